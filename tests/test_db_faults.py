"""The database going away under a running app: PostgreSQL ends every connection (a
restart, a failover, an administrator's ``pg_terminate_backend``) between two cycles. The
pool's connections are dead; the next cycle must open new ones, poll, store and alert as
if nothing happened, and nothing of the first cycle is sent again. Real PostgreSQL, a
real loopback feed server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, text

from monitor.app import App
from monitor.samples import rss_feed, rss_item
from tests.conftest import Clock, RecordingNotifier, SettingsFactory

pytestmark = pytest.mark.postgres

RULE = {"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"], "stories": "each"}


def _feed(clock: Clock, *titles: str) -> bytes:
    items = [
        rss_item(title, f"https://news.example.org/{n}", clock.now - timedelta(minutes=5), f"{title}.")
        for n, title in enumerate(titles)
    ]
    return rss_feed("Desk", "https://news.example.org/", items)


def _end_every_other_connection(url: str) -> int:
    """What a server restart does to the app's pool: every backend of the database but ours ends."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        admin.dispose()
    return int(ended)


def test_connections_postgresql_ended_are_replaced_and_the_next_cycle_alerts(
    httpserver: HTTPServer,
    pg_url: str,
    settings_factory: SettingsFactory,
    notifier: RecordingNotifier,
    clock: Clock,
) -> None:
    httpserver.expect_request("/desk.xml").respond_with_data(
        _feed(clock, "ATACMS strike on Crimea"), content_type="application/rss+xml"
    )
    settings = settings_factory(
        database=pg_url, feeds=[{"name": "Desk", "url": httpserver.url_for("/desk.xml")}], rules=[RULE]
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        first = app.run_once()
        assert [(o.status, o.sent) for o in first.outcomes] == [("ok", 1)]

        assert _end_every_other_connection(pg_url) >= 1
        clock.advance(timedelta(minutes=10))
        httpserver.clear()
        httpserver.expect_request("/desk.xml").respond_with_data(
            _feed(clock, "ATACMS strike on Crimea", "Second ATACMS strike"),
            content_type="application/rss+xml",
        )
        second = app.run_once()
        [status] = app.store.feed_statuses()

    assert [(o.status, o.new, o.sent, o.error) for o in second.outcomes] == [("ok", 1, 1, None)]
    assert [a.title for a in notifier.sent] == ["ATACMS strike on Crimea", "Second ATACMS strike"]
    assert status.error_count == 0 and status.articles == 2
