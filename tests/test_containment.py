"""Containment: whatever goes wrong while polling one feed is that feed's recorded error
(with its type, in ``status`` and the metrics), its lease ends at once and it backs off;
one bad entry is left out with a reason and the rest of the feed is stored; a poll that
outlived its lease never writes over another poller's. Feeds are real loopback servers;
the faults come through our own seams (the parser, the matcher)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import App
from monitor.errors import LeaseLost
from monitor.faults import describe
from monitor.match import Matcher, Screened
from monitor.models import Entry, Fetched, ParsedFeed
from monitor.parse import parse
from monitor.pipeline import poll_feed
from monitor.samples import rss_feed, rss_item, voa_feed
from monitor.store import PollResult, Store
from tests.conftest import Clock, RecordingNotifier, SettingsFactory

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _feeds(httpserver: HTTPServer, names: list[str]) -> list[dict[str, str]]:
    for name in names:
        httpserver.expect_request(f"/{name}").respond_with_data(
            voa_feed(), content_type="application/rss+xml"
        )
    return [{"name": name, "url": httpserver.url_for(f"/{name}")} for name in names]


def _crashing_for(url_part: str) -> Callable[[Fetched], ParsedFeed]:
    """The real parser, except that it has a bug on one feed."""

    def parser(fetched: Fetched) -> ParsedFeed:
        if url_part in fetched.url:
            raise RuntimeError("boom: a bug met on this feed only")
        return parse(fetched)

    return parser


def test_a_bug_while_polling_one_feed_is_that_feeds_recorded_error_and_the_others_go_on(
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    clock: Clock,
    notifier: RecordingNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_factory(
        poll={"first_poll": "all", "interval": "10m"},
        feeds=_feeds(httpserver, ["good", "buggy"]),
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )
    parser = _crashing_for("/buggy")
    with App.from_settings(settings, clock=clock, notifier=notifier, parser=parser) as app:
        caplog.set_level(logging.ERROR, logger="monitor")
        report = app.run_once()
        outcomes = {o.feed: o for o in report.outcomes}
        statuses = {s.name: s for s in app.store.feed_statuses()}
        leases = {f.name: f for f in app.store.feeds()}
        clock.advance(timedelta(hours=1))
        app.run_once()  # the same bug again: one line, no second traceback
        metrics = app.metrics.render().decode()

    assert outcomes["good"].status == "ok" and len(notifier.sent) == 1
    bad = outcomes["buggy"]
    assert (bad.status, bad.error_kind) == ("error", "RuntimeError")
    assert statuses["buggy"].last_error == "internal error: RuntimeError: boom: a bug met on this feed only"
    assert statuses["buggy"].error_count == 1
    assert statuses["buggy"].next_poll_at == datetime(2024, 5, 31, 18, 10, tzinfo=UTC)  # backed off
    assert leases["buggy"].lease is None and 'monitor_poll_errors_total{kind="RuntimeError"} 2.0' in metrics
    tracebacks = [r for r in caplog.records if r.exc_info and "boom" in r.getMessage()]
    repeats = [r for r in caplog.records if "seen before" in r.getMessage()]
    assert len(tracebacks) == 1 and len(repeats) == 1


def test_strict_mode_lets_the_bug_propagate(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    settings = settings_factory(feeds=_feeds(httpserver, ["buggy"]))
    parser = _crashing_for("/buggy")
    with (
        App.from_settings(settings, clock=clock, notifier=notifier, parser=parser, strict=True) as app,
        pytest.raises(RuntimeError, match="boom"),
    ):
        app.run_once()


class _FailsOn(Matcher):
    """The real matcher, with a bug on entries whose title holds a marker."""

    def screen(self, entry: Entry, feed_name: str) -> Screened:
        if "POISON" in entry.title:
            raise ValueError("matcher bug")
        return super().screen(entry, feed_name)


def test_an_entry_the_matcher_fails_on_is_left_out_with_a_reason_and_the_rest_is_stored(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    when = clock.now - 5 * MIN
    items = [
        rss_item("ATACMS story one", "https://news.example/1", when, "ATACMS"),
        rss_item("POISON ATACMS story", "https://news.example/2", when, "ATACMS"),
        rss_item("ATACMS story three", "https://news.example/3", when, "ATACMS"),
    ]
    httpserver.expect_request("/f").respond_with_data(rss_feed("F", "https://news.example/", items))
    settings = settings_factory(
        feeds=[{"name": "F", "url": httpserver.url_for("/f")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"], "stories": "each"}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier) as app:
        deps = replace(app.deps, matcher=_FailsOn(settings.rules))
        app.sync_feeds()
        [feed] = app.store.feeds()
        outcome = poll_feed(feed, deps)
        [status] = app.store.feed_statuses()
        again = poll_feed(app.store.feeds()[0], deps)

    assert (outcome.status, outcome.new, outcome.dropped) == ("ok", 2, 1)
    assert sorted(a.title for a in notifier.sent) == ["ATACMS story one", "ATACMS story three"]
    assert status.last_warning is not None
    assert status.last_warning.startswith("1 entry left out: match: internal error: ValueError: matcher bug")
    assert (again.new, again.dropped) == (0, 1), "the bad entry is tried again, the stored ones are not"


def _store_with_feed(db_url: str) -> tuple[Store, int]:
    store = Store.open(db_url)
    store.sync_feeds([("F", "https://news.example/feed")], datetime(2024, 5, 31, tzinfo=UTC))
    return store, store.feeds()[0].id


def test_a_poll_that_outlived_its_lease_cannot_write_over_the_new_holder(any_db_url: str) -> None:
    now = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
    store, feed_id = _store_with_feed(any_db_url)
    try:
        [slow] = store.claim_feeds(now, MIN, "daemon-a", 10)
        [fast] = store.claim_feeds(now + 2 * MIN, MIN, "daemon-b", 10)  # a's lease expired
        assert slow.lease != fast.lease
        entry = Entry("k", "t", "https://news.example/k", None, now, "", "", "", "")
        result = PollResult(None, None, "F")
        for late_write in (
            lambda: store.save_poll(feed_id, result, [entry], {}, {}, now, now + HOUR, lease=slow.lease),
            lambda: store.record_failure(feed_id, "fetch: late", now, now + MIN, lease=slow.lease),
            lambda: store.record_unchanged(feed_id, now, now + MIN, lease=slow.lease),
            lambda: store.renew_lease(feed_id, slow.lease, now + 10 * MIN),
        ):
            with pytest.raises(LeaseLost):
                late_write()
        [status] = store.feed_statuses()
        assert (status.articles, status.last_error) == (0, None)
        store.save_poll(feed_id, result, [entry], {}, {}, now, now + HOUR, lease=fast.lease)
        [status] = store.feed_statuses()
        assert status.articles == 1 and store.claim_feeds(now + 3 * MIN, MIN, "daemon-c", 10) == []
    finally:
        store.close()


def test_the_pipeline_reports_a_lost_lease_and_records_nothing(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    settings = settings_factory(
        feeds=_feeds(httpserver, ["f"]), rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}]
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.sync_feeds()
        [mine] = app.store.claim_feeds(clock.now, MIN, "slow", 1)
        clock.advance(2 * MIN)
        [theirs] = app.store.claim_feeds(clock.now, MIN, "fast", 1)
        outcome = app.poll_one(mine)
        [status] = app.store.feed_statuses()
        [row] = [f for f in app.store.claim_feeds(clock.now + 2 * MIN, MIN, "next", 1)]
    assert (outcome.status, outcome.error_kind) == ("error", "LeaseLost")
    assert (status.articles, status.error_count, status.last_poll_at) == (0, 0, None)
    assert notifier.sent == [] and theirs.lease is not None and row.lease != theirs.lease


def test_a_schedule_further_ahead_than_any_legitimate_wait_is_due(db_url: str) -> None:
    now = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
    store, feed_id = _store_with_feed(db_url)
    try:
        far = now + timedelta(days=3650)  # written while the clock said 2034
        store.record_unchanged(feed_id, now, far)
        assert store.claim_feeds(now, MIN, "d", 10, horizon=timedelta(hours=6)) != []
        store.release_feeds()
        store.record_unchanged(feed_id, now, now + timedelta(hours=2))
        assert store.claim_feeds(now, MIN, "d", 10, horizon=timedelta(hours=6)) == []
    finally:
        store.close()


def test_a_publisher_that_changes_every_guid_on_every_poll_alerts_once(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    polls = iter(range(1, 100))

    def respond(_request: Request) -> Response:
        link = "https://news.example/a?utm_source=rss" if next(polls) % 2 else "HTTPS://News.Example/a"
        item = rss_item("ATACMS  strike", link, clock.now - MIN, "ATACMS", guid=f"poll-{next(polls)}")
        return Response(rss_feed("F", "https://news.example/", [item]), content_type="application/rss+xml")

    httpserver.expect_request("/f").respond_with_handler(respond)
    settings = settings_factory(
        feeds=[{"name": "F", "url": httpserver.url_for("/f")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        first = app.run_once().outcomes[0]
        clock.advance(timedelta(hours=1))
        second = app.run_once().outcomes[0]
    assert (first.new, second.new, len(notifier.sent)) == (1, 0, 1)


def test_the_lease_keeper_renews_polls_in_flight_and_names_the_lost_ones(any_db_url: str) -> None:
    now = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
    store = Store.open(any_db_url)
    try:
        store.sync_feeds([("A", "https://a.example/f"), ("B", "https://b.example/f")], now)
        a, b = store.claim_feeds(now, MIN, "me", 10)
        [taken] = store.claim_feeds(now + 2 * MIN, MIN, "other", 1, exclude=[a.id])
        assert taken.id == b.id, "b's lease expired and went to another poller; a was excluded"
        assert store.renew_leases([(a.id, str(a.lease)), (b.id, str(b.lease))], now + 10 * MIN) == [b.id]
        later = store.claim_feeds(now + 5 * MIN, MIN, "third", 10)
        assert [f.id for f in later] == [b.id], "a's renewed lease holds; b's expired again"
    finally:
        store.close()


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("a message that raises")


def test_a_fault_whose_message_raises_is_still_described_in_one_line() -> None:
    """The job boundary reports with ``describe``: it must not raise while reporting."""
    assert describe(_Unprintable()) == (
        "internal error: _Unprintable: (_Unprintable with a message that cannot be shown)"
    )
