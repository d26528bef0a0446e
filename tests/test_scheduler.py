"""The daemon in-process: ticks poll due feeds, in-flight feeds are not polled twice,
and a stop request finishes the work in hand."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta, tzinfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import App
from monitor.config import Settings
from monitor.models import Entry, Match, Snippet
from monitor.samples import voa_feed
from monitor.scheduler import JOB_DEFAULTS, ClockStep, Daemon
from monitor.store import PollResult
from tests.conftest import WAIT, Clock, JsonSink, SettingsFactory, free_port


def _voa_to_hook(httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink) -> Settings:
    """One loopback VOA feed whose article the ATACMS rule sends to the JSON sink."""
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    return settings_factory(
        channels={"hook": json_sink.url()},
        feeds=[{"name": "VOA", "url": httpserver.url_for("/voa.xml")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )


def test_daemon_polls_alerts_and_stops(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink
) -> None:
    settings = _voa_to_hook(httpserver, settings_factory, json_sink)
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


class _SteppedDatetime(datetime):
    """APScheduler's own ``datetime``, on a wall clock the test can step (the daemon's
    scheduler reads nothing else): an NTP step or a restored snapshot, on demand."""

    offset = timedelta(0)

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _SteppedDatetime:
        real = datetime.now(tz) + cls.offset
        return (
            cls.fromtimestamp(real.timestamp(), tz) if tz is not None else cls.fromtimestamp(real.timestamp())
        )


def test_the_daemon_goes_on_when_the_wall_clock_steps_back(
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    json_sink: JsonSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """APScheduler 3 plans interval jobs on wall time: after the clock stepped back an
    hour, no send (nor poll, nor lease renewal) ran for that hour. The daemon sees the
    step against the monotonic clock and has its periodic jobs run at once."""
    for module in (apscheduler.schedulers.base, apscheduler.executors.base):  # all it reads time from
        monkeypatch.setattr(module, "datetime", _SteppedDatetime)
    monkeypatch.setattr(_SteppedDatetime, "offset", timedelta(0))
    settings = _voa_to_hook(httpserver, settings_factory, json_sink)
    stop = threading.Event()
    with App.from_settings(settings, strict=True) as app:
        wall = lambda: datetime.now(UTC) + _SteppedDatetime.offset  # noqa: E731
        daemon = Daemon(app, poll_tick=timedelta(seconds=1), delivery_tick=timedelta(seconds=1), wall=wall)
        thread = threading.Thread(target=daemon.run, args=(stop,))
        thread.start()
        try:
            json_sink.inbox.wait_for(1)  # running: the feed's alert went out
            _SteppedDatetime.offset = timedelta(hours=-1)
            feed_id = app.store.feeds()[0].id
            now = app.clock()
            entry = Entry(
                "late", "ATACMS strike", "https://news.example/late", None, now, "", "ATACMS", "", ""
            )
            match = Match("ATACMS", "summary", ("ATACMS",), Snippet("ATACMS"))
            app.store.save_poll(
                feed_id,
                PollResult(None, None, "VOA"),
                [entry],
                {"late": [match]},
                {"ATACMS": ["hook"]},
                now,
                now,
            )
            posts = json_sink.inbox.wait_for(2)  # the next send, due now, goes out
        finally:
            stop.set()
            thread.join(WAIT)
    assert posts[1]["title"] == "[ATACMS] ATACMS strike"


def test_a_clock_step_is_told_from_drift_and_from_steps_forward() -> None:
    """Only a wall clock that falls behind the monotonic one by CLOCK_STEP_S is a step
    back; a little drift, a busy machine (both clocks move on together) or a step
    forward (APScheduler runs what it missed) is none."""
    mono, wall = [100.0], [datetime(2026, 12, 1, tzinfo=UTC)]
    steps = ClockStep(lambda: wall[0], lambda: mono[0])

    def move(seconds: float, wall_seconds: float) -> float:
        mono[0] += seconds
        wall[0] += timedelta(seconds=wall_seconds)
        return steps.stepped_back()

    assert move(0.25, 0.25) == 0.0
    assert move(30.0, 29.0) == 0.0  # drift and a long pause: no step
    assert move(0.25, 3600.0) == 0.0  # forward
    assert move(0.25, -3600.0) == pytest.approx(3600.25)
    assert move(0.25, 0.25) == 0.0
