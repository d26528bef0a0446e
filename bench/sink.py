"""A webhook receiver for ``json://`` channels that notes when each post arrived."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


class Sink:
    """Listens on 127.0.0.1 (any free port) in a thread; ``posts`` are (unix time, body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink._lock:
                    sink.posts.append((time.time(), body.decode("utf-8", "replace")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The Apprise URL of this sink."""
        return f"json://127.0.0.1:{self.port}/hook"

    def count(self) -> int:
        with self._lock:
            return len(self.posts)

    def arrivals(self, token: str) -> list[float]:
        """When posts mentioning ``token`` arrived."""
        with self._lock:
            return [at for at, body in self.posts if token in body]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
