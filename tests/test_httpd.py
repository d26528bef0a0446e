"""The status server against clients that connect and never send their request: at most
``clients`` are served at once, the others are closed at once, and a silent one is
dropped after ``read_timeout``; then the server answers again. A real server on
127.0.0.1 and real sockets; the test waits on the sockets themselves (``select``).
Without the bound the threads grow with the clients; without the timeout a silent
client is never closed."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from monitor.httpd import StatusServer

CLIENTS = 4
SILENT = 40
READ_TIMEOUT = 3.0


@pytest.fixture
def server() -> Iterator[StatusServer]:
    status = StatusServer(
        "127.0.0.1:0",
        lambda: (True, {"ok": True}),
        lambda: b"up 1\n",
        clients=CLIENTS,
        read_timeout=READ_TIMEOUT,
    )
    status.start()
    yield status
    status.stop()


def _handler_threads() -> int:
    return sum(1 for t in threading.enumerate() if "process_request_thread" in t.name)


def _closed_by_the_server(sockets: list[socket.socket], count: int, within: float) -> list[socket.socket]:
    """Wait (on the sockets) until ``count`` of them were closed by the server; those."""
    closed: list[socket.socket] = []
    deadline = time.monotonic() + within
    while len(closed) < count and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([s for s in sockets if s not in closed], [], [], left)
        closed += [s for s in readable if s.recv(1) == b""]
    return closed


def test_silent_clients_are_bounded_and_dropped(server: StatusServer) -> None:
    host, port = server.address.rsplit(":", 1)
    before = _handler_threads()
    silent = [socket.create_connection((host, int(port))) for _ in range(SILENT)]
    try:
        # One real request after them: the server accepts in order, so once it has
        # answered this one it has taken every silent connection before it. All slots
        # are held by silent clients, so it is closed without an answer.
        with socket.create_connection((host, int(port))) as probe:
            probe.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            probe.settimeout(READ_TIMEOUT * 10)
            assert probe.recv(100) == b""
        assert _handler_threads() - before <= CLIENTS
        # The others were closed at once; a served one that sends nothing is dropped
        # after its read timeout.
        closed = _closed_by_the_server(silent, SILENT, READ_TIMEOUT * 10)
        assert len(closed) == SILENT
    finally:
        for connection in silent:
            connection.close()
    with urllib.request.urlopen(f"http://{server.address}/healthz", timeout=10) as response:
        assert (response.status, json.loads(response.read())) == (200, {"ok": True})


def _raw(server: StatusServer, request: bytes) -> bytes:
    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(request)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "target", ["/healthz?probe=kubelet", "/healthz?", "http://monitor.internal:8080/healthz", "/healthz#x"]
)
def test_a_probe_with_a_query_or_the_absolute_form_reaches_healthz(server: StatusServer, target: str) -> None:
    """They were a 404, which a probe reads as "down": the container would be restarted."""
    answer = _raw(server, f"GET {target} HTTP/1.0\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 200 ") and answer.endswith(b'{"ok": true}')


def test_a_request_target_urllib_refuses_is_a_400_and_the_server_goes_on(server: StatusServer) -> None:
    """``GET http://[oops/healthz`` raised before the handler's guard: no answer at all, and
    a traceback on standard error past the log's redaction. Any client could do it."""
    assert _raw(server, b"GET http://[oops/healthz HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    assert _raw(server, b"GET /healthz HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200 ")


def test_head_answers_the_headers_of_get_without_the_body(server: StatusServer) -> None:
    got = _raw(server, b"GET /metrics HTTP/1.0\r\n\r\n")
    head = _raw(server, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 ") and head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 5\r\n" in head and got.endswith(b"\r\n\r\nup 1\n")


def test_a_reader_that_raises_is_a_500_not_a_dropped_connection() -> None:
    def broken() -> tuple[bool, dict[str, object]]:
        raise RuntimeError("a bug")

    status = StatusServer("127.0.0.1:0", broken, lambda: b"up 1\n")
    status.start()
    try:
        assert _raw(status, b"GET /healthz HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 500 ")
        assert _raw(status, b"GET /metrics HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200 ")
    finally:
        status.stop()


def test_a_client_that_drips_its_request_is_cut_at_the_deadline(server: StatusServer) -> None:
    """A byte just inside each read's timeout never timed out: a handful of such clients
    held every slot for as long as they kept dripping. The whole exchange has a deadline
    (twice the read timeout); past it the server closes the connection."""
    host, port = server.address.rsplit(":", 1)
    cut = threading.Event()
    started = time.monotonic()

    def drip(connection: socket.socket) -> None:
        header = b"GET /healthz HTTP/1.0\r\nX-Slow: " + b"a" * 10_000
        for byte in header:
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                break
            readable, _, _ = select.select([connection], [], [], READ_TIMEOUT / 3)  # a slow client's pace
            if readable and connection.recv(1) == b"":
                break
        cut.set()

    with socket.create_connection((host, int(port))) as connection:
        thread = threading.Thread(target=drip, args=(connection,), daemon=True)
        thread.start()
        assert cut.wait(READ_TIMEOUT * 6), "the dripping client was never cut"
        lasted = time.monotonic() - started
    assert lasted >= READ_TIMEOUT * 2 - 1, "not before its deadline"
