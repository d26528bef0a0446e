"""The daemon in-process: ticks poll due feeds, in-flight feeds are not polled twice,
and a stop request finishes the work in hand."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import App
from monitor.models import Entry
from monitor.samples import voa_feed
from monitor.scheduler import JOB_DEFAULTS, Daemon
from monitor.store import PollResult
from tests.conftest import WAIT, Clock, JsonSink, SettingsFactory, free_port


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


def test_shutdown_waits_for_a_running_job_within_the_grace_and_counts_what_it_abandons(
    settings_factory: SettingsFactory,
) -> None:
    running, finish = threading.Event(), threading.Event()

    def long_job() -> None:
        with daemon._jobs.running():
            running.set()
            finish.wait(WAIT)

    with App.from_settings(settings_factory(), strict=True) as app:
        daemon = Daemon(app)
        job = threading.Thread(target=long_job)
        job.start()
        assert running.wait(WAIT)
        assert daemon.close(grace=0.2) == 1, "the job still running past the grace is abandoned"
        finish.set()
        job.join(WAIT)
        assert Daemon(app).close(grace=0.2) == 0


def test_a_prune_stops_between_batches_when_asked(settings_factory: SettingsFactory, clock: Clock) -> None:
    with App.from_settings(settings_factory(feeds=[{"name": "F", "url": "https://x.example/f"}])) as app:
        app.sync_feeds()
        [feed] = app.store.feeds()
        old = clock.now - timedelta(days=400)
        entries = [Entry(f"k{n}", "t", None, None, old, "", "", "", "") for n in range(30)]
        app.store.save_poll(feed.id, PollResult(None, None, "F"), entries, {}, {}, old, clock.now)
        asked: list[int] = []

        def stop() -> bool:
            asked.append(1)
            return True

        pruned = app.store.prune(clock.now, timedelta(days=90), None, batch=10, stop=stop)
        assert (pruned.articles, len(asked)) == (10, 1)
        assert app.store.prune(clock.now, timedelta(days=90), None, batch=10).articles == 20


def test_a_reload_applies_concurrency_the_listen_address_and_the_pools_and_names_what_needs_a_restart(
    settings_factory: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    first = settings_factory(http={"listen": f"127.0.0.1:{free_port()}"}, poll={"concurrency": 2})
    port = free_port()
    second = settings_factory(
        http={"listen": f"127.0.0.1:{port}"},
        poll={"concurrency": 5},
        fetch={"parse_timeout": "5s", "page_workers": 3},
        database_upgrade="manual",
    )
    configs = iter([second])
    with App.from_settings(first, strict=True) as app:
        daemon = Daemon(app, load_config=lambda: next(configs))
        daemon.http = daemon._serve(first.http.listen)
        try:
            caplog.set_level(logging.INFO, logger="monitor")
            old_parse, old_pages = app.parse_pool, app.extract_pool
            assert daemon.reload()
            assert app.settings.poll.concurrency == 5
            assert app.parse_pool is not old_parse and app.parse_pool.timeout == 5
            assert app.extract_pool is not old_pages and app.extract_pool.size == 3
            assert app.deps.parser == app.parse_pool.parse and app.deps.extractor == app.extract_pool.extract
            assert daemon.http is not None and daemon.http.listen == f"127.0.0.1:{port}"
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=WAIT).status_code == 503
        finally:
            if daemon.http is not None:
                daemon.http.stop()
    [line] = [r.getMessage() for r in caplog.records if "reload status=ok" in r.getMessage()]
    assert "needs_restart=database_upgrade " in line
