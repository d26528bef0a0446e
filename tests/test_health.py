"""Feed health with an injected clock: one notice when a feed starts failing or goes
silent, one when it recovers, never one per poll."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from monitor.app import App
from monitor.config import HealthSettings
from monitor.health import after_success, assess, assess_lazily, silent_threshold, typical_gap
from monitor.models import FeedStatus
from monitor.samples import rss_feed, rss_item
from tests.conftest import Clock, JsonSink, SettingsFactory

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _hourly_feed(start: datetime, count: int) -> bytes:
    items = [rss_item(f"Story {i}", f"https://x.example/{i}", start + i * H, "text") for i in range(count)]
    return rss_feed("Hourly", "https://x.example/", items)


def _app(settings_factory: SettingsFactory, url: str, sink: JsonSink, clock: Clock) -> App:
    settings = settings_factory(
        channels={"ops": sink.url()},
        health={"channel": "ops", "failing_after": "1h", "silent_after": "2h", "silent_factor": 4},
        poll={"interval": "10m", "first_poll": "none"},
        feeds=[{"name": "Hourly", "url": url}],
    )
    return App.from_settings(settings, clock=clock, strict=True)


def _poll(app: App, clock: Clock, advance: timedelta) -> None:
    clock.advance(advance)
    app.poll(app.store.feeds())
    app.courier.deliver()


def test_failing_then_recovered_sends_two_notices(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock
) -> None:
    httpserver.expect_request("/f").respond_with_data(_hourly_feed(clock.now - 5 * H, 5))
    with _app(settings_factory, httpserver.url_for("/f"), json_sink, clock) as app:
        app.sync_feeds()
        _poll(app, clock, timedelta(0))
        httpserver.clear()
        httpserver.expect_request("/f").respond_with_data("down", status=500)
        for _ in range(4):
            _poll(app, clock, 30 * timedelta(minutes=1))
        [notice] = json_sink.inbox.wait_for(1)
        assert notice["title"] == "[feed health] Hourly is failing"
        assert "failing for 1h: fetch: HTTP 500 INTERNAL SERVER ERROR" in notice["message"]
        assert app.store.feed_statuses()[0].health == "failing"
        httpserver.clear()
        httpserver.expect_request("/f").respond_with_data(_hourly_feed(clock.now - 5 * H, 5))
        _poll(app, clock, 30 * timedelta(minutes=1))
        _poll(app, clock, 30 * timedelta(minutes=1))
    posts = json_sink.inbox.wait_for(2)
    assert [p["title"] for p in posts] == [
        "[feed health] Hourly is failing",
        "[feed health] Hourly has recovered",
    ]


def test_silent_feed_is_reported_once_and_recovers_with_a_new_article(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock
) -> None:
    start = clock.now - 6 * H
    httpserver.expect_request("/f").respond_with_data(_hourly_feed(start, 6))
    with _app(settings_factory, httpserver.url_for("/f"), json_sink, clock) as app:
        app.sync_feeds()
        _poll(app, clock, timedelta(0))
        for _ in range(5):  # 5 hours with nothing new: usual gap 1h x 4 = 4h
            _poll(app, clock, H)
        [notice] = json_sink.inbox.wait_for(1)
        assert notice["title"] == "[feed health] Hourly is silent"
        assert "no new article for 4h (usually within 4h)" in notice["message"]
        httpserver.clear()
        httpserver.expect_request("/f").respond_with_data(_hourly_feed(start, 12))
        _poll(app, clock, H)
    titles = [p["title"] for p in json_sink.inbox.wait_for(2)]
    assert titles == ["[feed health] Hourly is silent", "[feed health] Hourly has recovered"]


def test_after_success_is_what_the_store_holds_after_a_successful_poll(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock
) -> None:
    """The health check after a success reads nothing: what it assumes must be what the
    store wrote (a first poll with new articles, then an unchanged one an hour later)."""
    httpserver.expect_request("/f").respond_with_data(_hourly_feed(clock.now - 5 * H, 5))
    with _app(settings_factory, httpserver.url_for("/f"), json_sink, clock) as app:
        app.sync_feeds()
        for advance, new in ((timedelta(0), True), (H, False)):
            clock.advance(advance)
            [before] = app.store.feeds()
            [outcome] = app.poll([before])
            assert (outcome.new > 0) is new
            held, assumed = app.store.feed_status(before.id), after_success(before, clock.now, new=new)
            fields = ("error_count", "last_error", "disabled", "last_success_at", "last_new_at", "health")
            assert {f: getattr(assumed, f) for f in fields} == {f: getattr(held, f) for f in fields}


def _status(**kw: object) -> FeedStatus:
    values: dict[str, object] = {
        "name": "F",
        "url": "https://x/",
        "active": True,
        "last_poll_at": NOW,
        "last_success_at": NOW - H,
        "last_error": None,
        "error_count": 0,
        "next_poll_at": None,
        "articles": 1,
        "alerts": 0,
        "last_new_at": NOW - H,
        "created_at": NOW - 48 * H,
    }
    values.update(kw)
    return FeedStatus(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "gap", "expected"),
    [
        (_status(), None, "ok"),
        (_status(disabled="fetch: HTTP 410 Gone"), None, "disabled"),
        (_status(error_count=3, last_error="x", last_success_at=NOW - 7 * H), None, "failing"),
        (_status(error_count=3, last_error="x", last_success_at=NOW - 5 * H), None, "ok"),
        (_status(error_count=1, last_error="x", last_success_at=None), None, "failing"),
        (_status(last_new_at=NOW - 25 * H), None, "silent"),
        (_status(last_new_at=NOW - 25 * H), 12 * H, "ok"),
        (_status(last_new_at=NOW - 49 * H), 12 * H, "silent"),
        (_status(last_success_at=None, last_new_at=None), None, "ok"),
    ],
    ids=[
        "ok",
        "disabled",
        "failing",
        "failing-not-yet",
        "never-worked",
        "silent",
        "slow-feed",
        "slow-silent",
        "new",
    ],
)
def test_assess(status: FeedStatus, gap: timedelta | None, expected: str) -> None:
    assert assess(status, gap, NOW, HealthSettings())[0] == expected


def test_typical_gap_and_threshold() -> None:
    assert typical_gap([NOW]) is None
    assert typical_gap([NOW, NOW + H, NOW + 3 * H, NOW + 4 * H]) == H
    assert silent_threshold(None, HealthSettings()) == 24 * H
    assert silent_threshold(10 * H, HealthSettings()) == 40 * H


_AGO = st.one_of(st.none(), st.integers(0, 24 * 90).map(lambda hours: NOW - hours * H))


@given(
    errors=st.integers(0, 3),
    disabled=st.sampled_from([None, "fetch: HTTP 410 Gone"]),
    success=_AGO,
    new=_AGO,
    gap=st.one_of(st.none(), st.integers(1, 24 * 30).map(lambda hours: hours * H)),
)
def test_assess_lazily_reads_the_gap_only_when_it_changes_nothing_else(
    errors: int, disabled: str | None, success: datetime | None, new: datetime | None, gap: timedelta | None
) -> None:
    """The poll's health check skips the read of recent articles unless the feed looks
    silent without it; the answer is always the one the full read gives."""
    status = _status(
        error_count=errors,
        last_error="x" if errors else None,
        disabled=disabled,
        last_success_at=success,
        last_new_at=new,
    )
    asked: list[bool] = []

    def gap_of() -> timedelta | None:
        asked.append(True)
        return gap

    settings = HealthSettings()
    assert assess_lazily(status, gap_of, NOW, settings) == assess(status, gap, NOW, settings)
    assert bool(asked) == (assess(status, None, NOW, settings)[0] == "silent")
