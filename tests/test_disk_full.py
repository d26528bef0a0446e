"""The disk filling up under a running app. SQLite answers "database or disk is full"
(SQLITE_FULL) to a write that needs a page it cannot have; here its own
``PRAGMA max_page_count`` caps the real database file at the size it has, which is what
a full volume does to it. The poll that cannot store is the feed's recorded error (it
backs off, its articles stay new), reads still answer, and once there is room again
every article alerts exactly once. Real SQLite, a real loopback feed server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, event

from monitor.app import App
from monitor.samples import rss_feed, rss_item
from tests.conftest import Clock, RecordingNotifier, SettingsFactory

RULE = {"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"], "stories": "each"}


def _feed(clock: Clock, count: int) -> bytes:
    """``count`` long articles, so that storing them needs many new pages."""
    items = [
        rss_item(
            f"ATACMS strike {n}",
            f"https://news.example.org/{n}",
            clock.now - timedelta(minutes=5),
            f"ATACMS report {n}. " + "Details follow. " * 300,
        )
        for n in range(count)
    ]
    return rss_feed("Desk", "https://news.example.org/", items)


@contextmanager
def full_disk(engine: Engine) -> Iterator[None]:
    """Every new connection of ``engine`` may not grow the file past its size now."""
    with engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

    def cap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count={pages + 1}")
        cursor.close()

    event.listen(engine, "connect", cap)
    engine.dispose()  # the pooled connections were opened without the cap
    try:
        yield
    finally:
        event.remove(engine, "connect", cap)
        engine.dispose()


def test_a_full_disk_is_the_feeds_error_and_every_article_alerts_once_there_is_room(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    served = httpserver.expect_request("/desk.xml")
    served.respond_with_data(_feed(clock, 2), content_type="application/rss+xml")
    feed = {"name": "Desk", "url": httpserver.url_for("/desk.xml")}
    settings = settings_factory(feeds=[feed], rules=[RULE])
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        first = app.run_once()
        assert [(o.status, o.sent) for o in first.outcomes] == [("ok", 2)]

        httpserver.clear()
        httpserver.expect_request("/desk.xml").respond_with_data(
            _feed(clock, 40), content_type="application/rss+xml"
        )
        with full_disk(app.store.engine):
            for _ in range(2):
                clock.advance(timedelta(minutes=30))
                full = app.run_once()
                assert [(o.status, o.new, o.sent) for o in full.outcomes] == [("error", 0, 0)]
                assert full.outcomes[0].error == "store: database or disk is full"
            [status] = app.store.feed_statuses()  # reads still answer
            assert status.last_error == "store: database or disk is full"
            assert status.error_count == 2 and status.articles == 2

        clock.advance(timedelta(hours=2))  # past the backoff
        freed = app.run_once()
        [status] = app.store.feed_statuses()

    assert [(o.status, o.new, o.sent, o.error) for o in freed.outcomes] == [("ok", 38, 38, None)]
    titles = [a.title for a in notifier.sent]
    assert sorted(titles) == sorted(f"ATACMS strike {n}" for n in range(40))
    assert status.error_count == 0 and status.articles == 40
