"""A pretend Internet on loopback, through the fetcher's resolver and policy seams.

``pretend_public`` counts 127.0.0.2 as a public address and every other loopback address
as private, so "public" servers can be real sockets without any network. ``Resolver``
answers host names from a table (a list of answers per host: one per lookup, the last
repeated), records every lookup, and looks nothing up beyond loopback: a name that is
not in the table resolves only if it is a numeric address (``AI_NUMERICHOST``).
``Server`` is a threaded HTTP server bound on one address, with routes and a log.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monitor.fetch import IPAddress, is_public

PUBLIC_IP, PRIVATE_IP = "127.0.0.2", "127.0.0.1"


def pretend_public(ip: IPAddress) -> bool:
    """The real policy, except that 127.0.0.2 stands for a public address."""
    return ip == ipaddress.ip_address(PUBLIC_IP) or is_public(ip)


class Resolver:
    """Host -> answers, one per lookup (the last one repeats); ``lookups`` in order."""

    def __init__(self, table: dict[str, Sequence[Sequence[str]]] | None = None) -> None:
        self.table: dict[str, list[list[str]]] = {k: [list(a) for a in v] for k, v in (table or {}).items()}
        self.lookups: list[str] = []

    def always(self, host: str, *addresses: str) -> None:
        self.table[host] = [list(addresses)]

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.table.get(host)
        if answers is None:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
            return [str(info[4][0]) for info in infos]
        return answers.pop(0) if len(answers) > 1 else list(answers[0])


Route = Callable[[BaseHTTPRequestHandler], None]


def respond(
    data: bytes = b"", status: int = 200, content_type: str = "application/rss+xml", **headers: str
) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.end_headers()
        h.wfile.write(data)

    return route


def redirect(location: str, status: int = 302) -> Route:
    return respond(status=status, Location=location)


class Server:
    """A threaded HTTP/1.1 server on ``host:port``; ``log`` holds (Host header, path)."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[str, str]] = []
        routes, log = self.routes, self.log

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be tested

            def do_GET(self) -> None:
                log.append((self.headers.get("Host", ""), self.path))
                route = routes.get(self.path)
                with contextlib.suppress(OSError):
                    if route is None:
                        respond(b"not here", 404, "text/plain")(self)
                    else:
                        route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.routes.clear()
        self.log.clear()

    @property
    def paths(self) -> list[str]:
        return [path for _, path in self.log]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def server_pair() -> tuple[Server, Server]:
    """A "public" server on 127.0.0.2 and a private one on 127.0.0.1, on the same port
    (so one URL reaches either, depending only on what its host name resolves to)."""
    for _ in range(20):
        public = Server(PUBLIC_IP)
        try:
            return public, Server(PRIVATE_IP, public.port)
        except OSError:  # that port is taken on 127.0.0.1: try another
            public.close()
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")
