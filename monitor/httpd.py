"""The daemon's own small HTTP server: ``/healthz`` for probes, ``/metrics`` for Prometheus.

It may listen on every interface (the container image does), so its clients are outside
values too: a client that connects and never sends its request (or sends it a byte at a
time) held a thread for ever, and enough of them took the daemon's memory. A client now
has ``read_timeout`` seconds for each read and twice that for the whole exchange (one
that drips a byte just inside each read's timeout is cut there), and at most
``clients`` requests are served at once; a connection past that is closed at once (a
probe then fails and is retried).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from monitor.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)
Health = Callable[[], tuple[bool, dict[str, object]]]
MAX_CLIENTS = 16  # requests served at once
READ_TIMEOUT = 5.0  # seconds a client may take for each read of its request
DEADLINE_READS = 2  # a whole request and its answer: at most this many read timeouts


class _BoundedServer(ThreadingHTTPServer):
    """A thread per request, at most ``clients`` at a time."""

    request_queue_size = 64  # the listen backlog: a burst of probes is accepted, not left to SYN retries

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], clients: int, deadline: float
    ) -> None:
        self._slots = threading.BoundedSemaphore(clients)
        self._deadline = deadline
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: closed now, not queued behind the others
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # A client that sends a byte just inside each read's timeout never times out: the
        # whole exchange has a deadline, past which its socket is shut and its slot freed.
        cut = threading.Timer(self._deadline, _shut, (request,))
        cut.daemon = True
        cut.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            cut.cancel()
            self._slots.release()


def _shut(connection: socket.socket) -> None:
    """End a connection that outlived its deadline (its reads return at once)."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _IPv6Server(_BoundedServer):
    address_family = socket.AF_INET6


class StatusServer:
    """Serves health and metrics on ``host:port`` from a background thread."""

    def __init__(
        self,
        listen: str,
        health: Health,
        metrics: Callable[[], bytes],
        *,
        clients: int = MAX_CLIENTS,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.listen = listen
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        server_class = _IPv6Server if ":" in host else _BoundedServer
        handler = _handler(health, metrics, read_timeout)
        self._server = server_class((host, int(port)), handler, clients, read_timeout * DEADLINE_READS)
        self._thread = threading.Thread(target=self._server.serve_forever, name="httpd", daemon=True)

    @property
    def address(self) -> str:
        """``host:port`` actually bound (port 0 picks a free one)."""
        host, port = self._server.server_address[:2]
        shown = host.decode() if isinstance(host, bytes) else host
        return f"{shown}:{port}"

    def start(self) -> None:
        """Start serving."""
        self._thread.start()
        log.info("http listening=%s paths=/healthz,/metrics", self.address)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


def _path(target: str) -> str | None:
    """The path of a request target, or None for one urllib refuses
    (``http://[oops/healthz``), which used to escape as a traceback and no answer."""
    try:
        return urlsplit(target).path
    except ValueError:
        return None


def _route(target: str, health: Health, metrics: Callable[[], bytes]) -> tuple[int, str, bytes]:
    """(status, content type, body) for a request target; a bug in a reader is a 500,
    an answer rather than a dropped connection."""
    path = _path(target)
    if path is None:
        return 400, "text/plain", b"bad request target\n"
    try:
        if path == "/healthz":
            ok, detail = health()
            return 200 if ok else 503, "application/json", json.dumps(detail).encode()
        if path == "/metrics":
            return 200, CONTENT_TYPE, metrics()
        return 404, "text/plain", b"not found\n"
    except Exception:
        log.exception("http: %s failed", path[:100])
        return 500, "text/plain", b"internal error\n"


def _handler(
    health: Health, metrics: Callable[[], bytes], read_timeout: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = read_timeout  # socketserver sets it on the connection: a silent client is dropped

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def _answer(self, *, with_body: bool) -> None:
            """Route on the path alone: a probe may add a query (``/healthz?probe=k8s``)
            or send the absolute form (``GET http://host/healthz``), which HTTP/1.1
            servers must accept; both were a 404, so such a probe saw the daemon down."""
            self._send(*_route(self.path, health, metrics), with_body=with_body)

        def _send(self, status: int, content_type: str, body: bytes, *, with_body: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http " + format, *args)

    return Handler
