"""SIGTERM while a slow feed is being polled: the daemon exits 0 within its grace
period, and the next run does the work that was cut short."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.cli import main
from monitor.samples import voa_feed
from tests.conftest import WAIT, Daemon, JsonSink


@pytest.mark.slow
def test_sigterm_during_a_slow_poll_exits_within_the_grace_and_loses_nothing(
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    daemon_factory: Callable[[Path], Daemon],
) -> None:
    asked = threading.Event()
    release = threading.Event()

    def slow(_request: Request) -> Response:
        asked.set()
        release.wait(WAIT)  # the server stalls until the test lets it go
        return Response(voa_feed(), content_type="application/rss+xml")

    httpserver.expect_request("/voa.xml").respond_with_handler(slow)
    path = write_config(
        f"""
database: sqlite:///monitor.db
shutdown_grace: 1s
poll: {{first_poll: all}}
channels: {{hook: "{json_sink.url()}"}}
feeds: [{{name: VOA, url: "{httpserver.url_for("/voa.xml")}"}}]
rules: [{{name: ATACMS, all: [ATACMS], notify: [hook]}}]
"""
    )
    daemon = daemon_factory(path)
    assert asked.wait(WAIT), "the daemon started polling"
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 8, "exited within the grace period (1 s) plus start-up slack"
    daemon.wait_for_line("daemon stopped abandoned=1")
    assert json_sink.posts == []

    release.set()
    assert main(["run", "--once", "-c", str(path)]) == 0
    [post] = json_sink.inbox.wait_for(1)
    assert post["title"].startswith("[ATACMS]")
