"""Retention: what a prune removes and what it must keep, on SQLite and PostgreSQL;
the daily job, ``monitor db vacuum`` and the ``retention`` config keys."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from monitor.app import App
from monitor.cli import main
from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.models import Entry, Match, Snippet
from monitor.samples import rss_feed, rss_item
from monitor.scheduler import Daemon
from monitor.store import PollResult, Pruned, Store
from monitor.store.tables import STORIES, STORY_ALERTS, STORY_TERMS
from tests.conftest import Clock, RecordingNotifier, SettingsFactory

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
DAY = timedelta(days=1)
LEASE = timedelta(minutes=2)
RESULT = PollResult(None, None, "Feed")
ROUTES = {"watch": ["hook"]}


def _entry(key: str) -> Entry:
    return Entry(key, f"title {key}", f"https://x.example/{key}", None, NOW, "", "text", "", "")


def _match() -> Match:
    return Match("watch", "summary", ("text",), Snippet("text", ((0, 4),)))


@pytest.fixture
def store(any_db_url: str) -> Iterator[Store]:
    store = Store.open(any_db_url)
    yield store
    store.close()


def _feed(store: Store) -> int:
    store.sync_feeds([("X", "https://x.example/feed")], NOW - 400 * DAY)
    return store.feeds()[0].id


def _poll(
    store: Store, feed: int, key: str, age: timedelta, *, matched: bool = False, now: datetime = NOW
) -> tuple[int, ...]:
    """Store one article (and its alert and delivery) as a poll ``age`` ago would have."""
    when = now - age
    matches = {key: [_match()]} if matched else {}
    return store.save_poll(feed, RESULT, [_entry(key)], matches, ROUTES, when, when).delivery_ids


def _settle(store: Store, ids: tuple[int, ...], age: timedelta, *, sent: bool) -> None:
    """Send these deliveries ``age`` ago, or make them dead letters."""
    when = NOW - age
    claim = store.claim_due(when, LEASE, ids=ids)
    for alert in claim.alerts:
        if sent:
            store.mark_sent(claim.token, [alert.delivery_id], when)
        else:
            store.mark_failed(claim.token, alert.delivery_id, "notify: refused", None)


def _scenario(store: Store) -> int:
    """Articles of every kind: old or recent, matched or not, delivered or not."""
    feed = _feed(store)
    _poll(store, feed, "old-plain", 100 * DAY)
    _poll(store, feed, "old-plain-2", 95 * DAY)
    _poll(store, feed, "recent-plain", 10 * DAY)
    _settle(store, _poll(store, feed, "old-sent", 120 * DAY, matched=True), 120 * DAY, sent=True)
    _settle(store, _poll(store, feed, "old-dead", 110 * DAY, matched=True), 110 * DAY, sent=False)
    _poll(store, feed, "old-pending", 105 * DAY, matched=True)  # its channel never came back
    _settle(store, _poll(store, feed, "recent-sent", 5 * DAY, matched=True), 5 * DAY, sent=True)
    return feed


KEYS = ["old-plain", "old-plain-2", "recent-plain", "old-sent", "old-dead", "old-pending", "recent-sent"]


def _left(store: Store, feed: int) -> set[str]:
    return store.known_keys(feed, KEYS)


def test_prune_removes_old_unmatched_articles_and_keeps_alerts_forever_by_default(store: Store) -> None:
    feed = _scenario(store)
    pruned = store.prune(NOW, 90 * DAY, None)
    assert pruned == Pruned(articles=2, matches=0, deliveries=0)
    assert _left(store, feed) == {"recent-plain", "old-sent", "old-dead", "old-pending", "recent-sent"}
    assert store.prune(NOW, 90 * DAY, None) == Pruned()


def test_prune_with_an_alerts_retention_removes_old_alerts_but_never_a_pending_delivery(store: Store) -> None:
    feed = _scenario(store)
    pruned = store.prune(NOW, 90 * DAY, 30 * DAY)
    assert pruned == Pruned(articles=4, matches=2, deliveries=2)
    assert _left(store, feed) == {"recent-plain", "old-pending", "recent-sent"}
    [channel] = store.channel_statuses()
    assert (channel.pending, channel.retrying, channel.sent, channel.dead) == (1, 0, 1, 0)
    [status] = store.feed_statuses()
    assert (status.articles, status.alerts) == (3, 2)


def test_alerts_younger_than_their_retention_keep_their_old_articles(store: Store) -> None:
    feed = _scenario(store)
    assert store.prune(NOW, 90 * DAY, 115 * DAY) == Pruned(articles=3, matches=1, deliveries=1)
    assert _left(store, feed) == {"recent-plain", "old-dead", "old-pending", "recent-sent"}


def test_recent_articles_stay_and_none_keeps_everything(store: Store) -> None:
    feed = _scenario(store)
    assert store.prune(NOW, None, None) == Pruned()
    assert store.prune(NOW, 200 * DAY, 200 * DAY) == Pruned()
    assert _left(store, feed) == set(KEYS)


def test_prune_works_through_many_small_batches(store: Store) -> None:
    feed = _feed(store)
    for i in range(7):
        _poll(store, feed, f"old-{i}", (100 + i) * DAY)
    _settle(store, _poll(store, feed, "old-matched", 100 * DAY, matched=True), 100 * DAY, sent=True)
    _poll(store, feed, "new", DAY)
    assert store.prune(NOW, 90 * DAY, None, batch=2) == Pruned(articles=7)
    assert store.prune(NOW, 90 * DAY, 30 * DAY, batch=2) == Pruned(articles=1, matches=1, deliveries=1)
    [status] = store.feed_statuses()
    assert status.articles == 1


def test_finished_feed_health_notices_follow_the_alerts_retention(store: Store) -> None:
    feed = _feed(store)
    for i, age in enumerate((60 * DAY, 50 * DAY, 40 * DAY, DAY)):
        store.set_health(feed, f"state-{i}", ("hook", f"notice {i}", "body"), NOW - age)
    claim = store.claim_due(NOW, LEASE)
    sent, dead, pending, recent = sorted(claim.alerts, key=lambda a: a.title)
    store.mark_sent(claim.token, [sent.delivery_id], NOW - 60 * DAY)
    store.mark_failed(claim.token, dead.delivery_id, "notify: refused", None)
    store.mark_failed(claim.token, pending.delivery_id, "notify: refused", NOW + DAY)
    store.mark_sent(claim.token, [recent.delivery_id], NOW - DAY)
    assert store.prune(NOW, 90 * DAY, None) == Pruned()
    assert store.prune(NOW, 90 * DAY, 30 * DAY, batch=1) == Pruned(deliveries=2)
    [channel] = store.channel_statuses()
    assert (channel.retrying, channel.sent, channel.dead) == (1, 1, 0)


def test_vacuum_runs_outside_a_transaction(store: Store) -> None:
    _scenario(store)
    store.prune(NOW, 90 * DAY, 30 * DAY)
    before = store.size()
    store.vacuum()
    after = store.size()
    assert 0 < after <= before or store.dialect == "postgresql"  # ANALYZE may grow the catalogs
    store.sync_feeds([("X", "https://x.example/feed"), ("Y", "https://y.example/feed")], NOW)
    assert len(store.feeds()) == 2  # and the store still works


def test_the_daily_job_prunes_with_the_configured_retention(
    settings_factory: SettingsFactory,
    notifier: RecordingNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_factory(retention={"articles": "90d", "alerts": "30d"})
    with App.from_settings(settings, notifier=notifier, clock=lambda: NOW, strict=True) as app:
        feed = _scenario(app.store)
        daemon = Daemon(app)
        try:
            with caplog.at_level(logging.INFO, logger="monitor.scheduler"):
                assert daemon.prune_old() == Pruned(articles=4, matches=2, deliveries=2)
        finally:
            daemon.close()
        assert _left(app.store, feed) == {"recent-plain", "old-pending", "recent-sent"}
    assert "prune articles=4 alerts=2 deliveries=2" in caplog.messages


def test_db_vacuum_prunes_now_and_reports(
    any_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(any_db_url)
    try:
        feed = _feed(store)
        for key, age in (("ancient", 400 * DAY), ("older", 100 * DAY), ("fresh", DAY)):
            _poll(store, feed, key, age, now=datetime.now(UTC))  # the command prunes by the real clock
    finally:
        store.close()
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {any_db_url}\nretention:\n  articles: 30d\n", encoding="utf-8")

    assert main(["db", "vacuum", "-c", str(config)]) == 0
    removed, vacuumed = capsys.readouterr().out.splitlines()
    assert removed == "removed 2 articles, 0 alerts and 0 deliveries (kept: articles 30d, alerts forever)"
    assert vacuumed.startswith("vacuumed the database: ") and vacuumed.endswith(" after")
    assert main(["db", "vacuum", "-c", str(config)]) == 0
    assert capsys.readouterr().out.startswith("removed 0 articles, 0 alerts and 0 deliveries")


@pytest.mark.parametrize(
    ("yaml", "articles", "alerts"),
    [
        ("", timedelta(days=90), None),
        ("retention:\n", timedelta(days=90), None),
        ("retention:\n  articles: 2w\n  alerts: 365d\n", timedelta(weeks=2), timedelta(days=365)),
        ("retention:\n  articles: null\n  alerts: null\n", None, None),
    ],
    ids=["default", "empty-section", "both", "forever"],
)
def test_retention_config(
    tmp_path: Path, yaml: str, articles: timedelta | None, alerts: timedelta | None
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml, encoding="utf-8")
    settings = load_settings(path)
    assert (settings.retention.articles, settings.retention.alerts) == (articles, alerts)
    assert settings.database_upgrade == "auto"


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("retention:\n  articles: 90x\n", "config.yaml:2:3: articles: bad duration '90x': write it like"),
        ("retention:\n  alert: 30d\n", "config.yaml:2:3: unknown key 'alert'"),
        (
            "database_upgrade: sometimes\n",
            "config.yaml:1:1: database_upgrade: must be 'auto' or 'manual' (got 'sometimes')",
        ),
    ],
    ids=["bad-duration", "unknown-key", "bad-upgrade-mode"],
)
def test_retention_and_upgrade_mistakes_point_at_the_line(tmp_path: Path, yaml: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml, encoding="utf-8")
    with pytest.raises(ConfigError) as failed:
        load_settings(path)
    assert message in str(failed.value)


def test_entries_older_than_the_alert_horizon_never_alert_again(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    """With ``retention.alerts`` set, a pruned alert's article seen again is not re-sent."""
    old = rss_item("ATACMS old", "https://x.example/old", clock.now - timedelta(days=40), "ATACMS")
    fresh = rss_item("ATACMS fresh", "https://x.example/fresh", clock.now - timedelta(hours=1), "ATACMS")
    httpserver.expect_request("/f").respond_with_data(rss_feed("F", "https://x.example/", [old, fresh]))
    settings = settings_factory(
        retention={"alerts": "30d"},
        feeds=[{"name": "F", "url": httpserver.url_for("/f")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
    assert [a.title for a in notifier.sent] == ["ATACMS fresh"]


def _undated(title: str, link: str, text: str) -> str:
    return (
        f"<item><title>{html.escape(title)}</title><link>{html.escape(link)}</link>"
        f"<guid>{html.escape(link)}</guid><description>{html.escape(text)}</description></item>"
    )


def _still_listed_after_prune(
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    notifier: RecordingNotifier,
    clock: Clock,
    item: str,
    retention: dict[str, str | None],
    first_poll: str = "recent",
) -> list[str]:
    """Poll a feed of ``item``; past retention, prune; then the feed gains an unrelated
    item (a changed body: parsed again) and still lists ``item``. The titles sent."""
    served = httpserver.expect_request("/f")
    served.respond_with_data(rss_feed("F", "https://x.example/", [item]), content_type="application/rss+xml")
    settings = settings_factory(
        poll={"first_poll": first_poll},
        retention=retention,
        feeds=[{"name": "F", "url": httpserver.url_for("/f")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"], "stories": "each"}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        clock.advance(120 * DAY)
        app.store.prune(clock.now, settings.retention.articles, settings.retention.alerts)
        other = rss_item("Sunny weekend ahead", "https://x.example/w", clock.now, "Sunny.")
        served.respond_with_data(
            rss_feed("F", "https://x.example/", [other, item]), content_type="application/rss+xml"
        )
        app.run_once()
        clock.advance(120 * DAY)  # and once more: the article stays while the feed lists it
        app.store.prune(clock.now, settings.retention.articles, settings.retention.alerts)
        app.run_once()
    return [a.title for a in notifier.sent]


def test_an_entry_seeded_on_the_first_poll_and_still_listed_never_alerts_after_a_prune(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    """First-poll seeding holds back an entry three days old: it must never alert. Pruned
    at 90 days while its feed still listed it, it was new again at the next changed
    body, and alerted 91 days late."""
    old = rss_item("ATACMS battery destroyed", "https://x.example/old", clock.now - 3 * DAY, "ATACMS.")
    sent = _still_listed_after_prune(httpserver, settings_factory, notifier, clock, old, {"articles": "90d"})
    assert sent == []


@pytest.mark.parametrize(
    "when", [pytest.param(None, id="undated"), pytest.param(365 * DAY, id="dated-a-year-ahead")]
)
def test_an_alerted_entry_still_listed_alerts_once_with_alerts_retention(
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    notifier: RecordingNotifier,
    clock: Clock,
    when: timedelta | None,
) -> None:
    """With ``retention.alerts``, an alert and its article go after that period; an entry
    whose date is the fetch time (undated, or a future date clamped to it) passed the
    guard against alerting old entries again, and alerted a second time."""
    if when is None:
        item = _undated("ATACMS strike", "https://x.example/u", "ATACMS.")
    else:
        item = rss_item("ATACMS strike", "https://x.example/u", clock.now + when, "ATACMS.")
    retention: dict[str, str | None] = {"articles": "30d", "alerts": "30d"}
    sent = _still_listed_after_prune(httpserver, settings_factory, notifier, clock, item, retention, "all")
    assert sent == ["ATACMS strike"]


def test_an_article_its_feed_no_longer_lists_is_pruned_as_before(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    served = httpserver.expect_request("/f")
    first = rss_item("Quiet day", "https://x.example/a", clock.now - DAY, "Nothing.")
    served.respond_with_data(rss_feed("F", "https://x.example/", [first]), content_type="application/rss+xml")
    settings = settings_factory(feeds=[{"name": "F", "url": httpserver.url_for("/f")}], rules=[])
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        clock.advance(DAY)
        later = rss_item("Another day", "https://x.example/b", clock.now, "Nothing.")
        served.respond_with_data(
            rss_feed("F", "https://x.example/", [later]), content_type="application/rss+xml"
        )
        app.run_once()
        clock.advance(100 * DAY)
        pruned = app.store.prune(clock.now, timedelta(days=90), None)
    assert pruned.articles == 1, "the article the feed dropped goes; the one it lists stays"


def _story_rows(app: App) -> dict[str, int]:
    with app.store.engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (STORIES, STORY_TERMS, STORY_ALERTS)
        }


def test_alerts_retention_lets_go_of_a_story_whose_reports_are_all_gone(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    """Every report of a story and its alert went with ``retention.alerts``, but the story
    row, its postings and its (story, rule) alert stayed for ever: the stories tables grew
    without bound. A story with no report left and none since the cutoff goes too."""
    items = [
        rss_item(
            f"ATACMS strike on {place}", f"https://x.example/{n}", clock.now - timedelta(hours=n), "ATACMS."
        )
        for n, place in enumerate(["Kherson", "Crimea"])
    ]
    served = httpserver.expect_request("/f")
    served.respond_with_data(rss_feed("F", "https://x.example/", items), content_type="application/rss+xml")
    settings = settings_factory(
        retention={"articles": "30d", "alerts": "30d"},
        feeds=[{"name": "F", "url": httpserver.url_for("/f")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        before = _story_rows(app)
        quiet = rss_item("Sunny weekend", "https://x.example/w", clock.now, "Sunny.")
        served.respond_with_data(
            rss_feed("F", "https://x.example/", [quiet]), content_type="application/rss+xml"
        )
        clock.advance(DAY)
        app.run_once()  # the feed no longer lists the reports
        clock.advance(100 * DAY)
        app.store.prune(clock.now, timedelta(days=30), timedelta(days=30))
        after = _story_rows(app)
    assert before["stories"] >= 1 and before["story_alerts"] >= 1 and before["story_terms"] >= 1
    assert after == {"stories": 0, "story_terms": 0, "story_alerts": 0}
