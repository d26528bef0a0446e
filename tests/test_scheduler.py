"""The daemon in-process: ticks poll due feeds, in-flight feeds are not polled twice,
and a stop request finishes the work in hand."""

from __future__ import annotations

import threading
from datetime import timedelta

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import App
from monitor.samples import voa_feed
from monitor.scheduler import JOB_DEFAULTS, Daemon
from tests.conftest import WAIT, Clock, JsonSink, SettingsFactory


def test_daemon_polls_alerts_and_stops(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    settings = settings_factory(
        channels={"hook": json_sink.url()},
        feeds=[{"name": "VOA", "url": httpserver.url_for("/voa.xml")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )
    stop = threading.Event()
    with App.from_settings(settings, strict=True) as app:
        daemon = Daemon(app, poll_tick=timedelta(milliseconds=200), delivery_tick=timedelta(seconds=1))
        thread = threading.Thread(target=daemon.run, args=(stop,))
        thread.start()
        try:
            [post] = json_sink.inbox.wait_for(1)
        finally:
            stop.set()
            thread.join(WAIT)
        assert not thread.is_alive()
        assert daemon.ticks >= 1
        [status] = app.store.feed_statuses()
    assert post["title"].startswith("[ATACMS]")
    assert status.articles == 1 and status.alerts == 1


def test_a_feed_in_flight_is_not_polled_again(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock
) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(WAIT)
        return Response(voa_feed(), content_type="application/rss+xml")

    httpserver.expect_request("/voa.xml").respond_with_handler(slow)
    settings = settings_factory(
        channels={"hook": json_sink.url()},
        feeds=[{"name": "VOA", "url": httpserver.url_for("/voa.xml")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )
    with App.from_settings(settings, clock=clock, strict=True) as app:
        app.sync_feeds()
        daemon = Daemon(app)
        try:
            assert daemon.poll_due() == 1
            assert daemon.poll_due() == 0
            release.set()
            json_sink.inbox.wait_for(1)
        finally:
            release.set()
            daemon.close()
        assert app.store.feeds(due_at=clock.now) == []
        clock.advance(timedelta(minutes=10))
        assert [f.name for f in app.store.feeds(due_at=clock.now)] == ["VOA"]


def test_jobs_are_configured_for_a_long_running_daemon() -> None:
    assert JOB_DEFAULTS == {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
