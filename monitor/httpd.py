"""The daemon's own small HTTP server: ``/healthz`` for probes, ``/metrics`` for Prometheus."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monitor.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)
Health = Callable[[], tuple[bool, dict[str, object]]]


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class StatusServer:
    """Serves health and metrics on ``host:port`` from a background thread."""

    def __init__(self, listen: str, health: Health, metrics: Callable[[], bytes]) -> None:
        self.listen = listen
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, int(port)), _handler(health, metrics))
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


def _handler(health: Health, metrics: Callable[[], bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok, detail = health()
                self._send(200 if ok else 503, "application/json", json.dumps(detail).encode())
            elif self.path == "/metrics":
                self._send(200, CONTENT_TYPE, metrics())
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http " + format, *args)

    return Handler
