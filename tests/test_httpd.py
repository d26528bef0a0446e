"""The status server against clients that connect and never send their request: at most
``clients`` are served at once, the others are closed at once, and a silent one is
dropped after ``read_timeout``; then the server answers again. A real server on
127.0.0.1 and real sockets; the test waits on the sockets themselves (``select``)."""

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
READ_TIMEOUT = 2.0


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


def test_silent_clients_are_bounded_closed_and_dropped(server: StatusServer) -> None:
    host, port = server.address.rsplit(":", 1)
    before = _handler_threads()
    silent = [socket.create_connection((host, int(port))) for _ in range(SILENT)]
    try:
        # Past the bound, a connection is closed at once: well before any read timeout.
        at_once = _closed_by_the_server(silent, SILENT - CLIENTS, READ_TIMEOUT / 2)
        assert len(at_once) == SILENT - CLIENTS
        assert _handler_threads() - before <= CLIENTS
        # The ones being served send nothing: each is dropped after its read timeout.
        held = [s for s in silent if s not in at_once]
        assert len(_closed_by_the_server(held, CLIENTS, READ_TIMEOUT * 5)) == CLIENTS
    finally:
        for connection in silent:
            connection.close()
    with urllib.request.urlopen(f"http://{server.address}/healthz", timeout=10) as response:
        assert (response.status, json.loads(response.read())) == (200, {"ok": True})
