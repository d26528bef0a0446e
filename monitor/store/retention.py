"""Retention: old articles, and optionally old alerts, leave the database in small batches.

An article goes once it was fetched before the articles cutoff and nothing needs it
any more: it has no alert (or, with an alerts retention, only alerts from before that
cutoff) and no delivery still to send. Its alerts and its sent or dead deliveries go
with it; a pending delivery keeps its article, whatever its age. Sent or dead
feed-health notices follow the alerts retention. Without one (the default) alerts,
their articles and notices are kept forever, so a matched article is never seen as
new again and never alerts twice.

Each batch is one short transaction, so a daemon on the same database waits for at
most one batch.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)

from monitor.errors import StorageError
from monitor.items import Record, key_digest
from monitor.store.engine import STORE_REFUSALS
from monitor.store.tables import (
    ABOUT_QUEUE,
    ARTICLES,
    DELIVERIES,
    EMBEDDINGS,
    FEEDS,
    MATCHES,
    STORIES,
    STORY_ALERTS,
    STORY_ARTICLES,
    STORY_TERMS,
)

BATCH = 500
_DONE = ("sent", "dead")


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many rows a prune removed."""

    articles: int = 0
    matches: int = 0
    deliveries: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.articles + other.articles,
            self.matches + other.matches,
            self.deliveries + other.deliveries,
        )


class Retention(ABC):
    """Pruning and vacuuming methods of the Store."""

    engine: Engine

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """One database transaction."""

    def prune(
        self,
        now: datetime,
        articles_older_than: timedelta | None,
        alerts_older_than: timedelta | None,
        *,
        batch: int = BATCH,
        stop: Callable[[], bool] = lambda: False,
    ) -> Pruned:
        """Delete what the retention periods let go (None keeps forever); the counts.

        ``stop`` is asked between batches: a shutting-down daemon leaves the rest for
        the next run (every batch is its own transaction, so nothing is half done).
        """
        total = Pruned()
        if articles_older_than is not None:
            alerts_cutoff = None if alerts_older_than is None else now - alerts_older_than
            prunable = _prunable(now - articles_older_than, alerts_cutoff)
            after, finished = 0, True
            while True:
                with self.transaction() as conn:
                    query = (
                        select(ARTICLES.c.id, ARTICLES.c.feed_id, ARTICLES.c.key)
                        .where(ARTICLES.c.id > after, *prunable)
                        .order_by(ARTICLES.c.id)
                        .limit(batch)
                    )
                    rows = conn.execute(query).all()
                    total += _delete_articles(conn, _not_listed(conn, rows))
                if len(rows) < batch:
                    break
                if stop():
                    finished = False
                    break
                after = rows[-1].id
            if finished:
                self._prune_embeddings(now - articles_older_than, batch, stop)
        if alerts_older_than is not None and not stop():
            total += self._prune_notices(now - alerts_older_than, batch, stop)
        if alerts_older_than is not None and not stop():
            self._prune_stories(now - alerts_older_than, batch, stop)
        return total

    def _prune_stories(self, cutoff: datetime, batch: int, stop: Callable[[], bool]) -> None:
        """Stories with no report left and none since the alerts cutoff, with their
        postings and their (story, rule) alerts: what ``retention.alerts`` lets go of an
        alert goes of its story too (without it, the tables grew for ever)."""
        when = func.coalesce(STORIES.c.last_seen, STORIES.c.created_at)
        reported = exists().where(STORY_ARTICLES.c.story_id == STORIES.c.id)
        delivering = exists().where(DELIVERIES.c.story_id == STORIES.c.id)
        query = (
            select(STORIES.c.id)
            .where(when < cutoff, ~reported, ~delivering)
            .order_by(STORIES.c.id)
            .limit(batch)
        )
        while True:
            with self.transaction() as conn:
                ids = list(conn.execute(query).scalars())
                if ids:
                    conn.execute(delete(STORY_TERMS).where(STORY_TERMS.c.story_id.in_(ids)))
                    conn.execute(delete(STORY_ALERTS).where(STORY_ALERTS.c.story_id.in_(ids)))
                    conn.execute(delete(STORIES).where(STORIES.c.id.in_(ids)))
            if len(ids) < batch or stop():
                return

    def _prune_embeddings(self, cutoff: datetime, batch: int, stop: Callable[[], bool]) -> None:
        """Embeddings made before the articles cutoff (a cache: made again if still needed)."""
        while True:
            with self.transaction() as conn:
                old = select(EMBEDDINGS.c.key).where(EMBEDDINGS.c.created_at < cutoff).limit(batch)
                keys = list(conn.execute(old).scalars())
                if keys:
                    conn.execute(delete(EMBEDDINGS).where(EMBEDDINGS.c.key.in_(keys)))
            if len(keys) < batch or stop():
                return

    def _prune_notices(self, cutoff: datetime, batch: int, stop: Callable[[], bool]) -> Pruned:
        query = (
            select(DELIVERIES.c.id)
            .where(
                DELIVERIES.c.article_id.is_(None),
                DELIVERIES.c.state.in_(_DONE),
                DELIVERIES.c.created_at < cutoff,
            )
            .order_by(DELIVERIES.c.id)
            .limit(batch)
        )
        removed = 0
        while True:
            with self.transaction() as conn:
                ids = list(conn.execute(query).scalars())
                if ids:
                    removed += conn.execute(delete(DELIVERIES).where(DELIVERIES.c.id.in_(ids))).rowcount
            if len(ids) < batch or stop():
                return Pruned(deliveries=removed)

    def size(self) -> int:
        """The database's size in bytes, as the backend counts it."""
        if self.engine.dialect.name == "sqlite":
            query = text("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
        else:
            query = text("SELECT pg_database_size(current_database())")
        with self.transaction() as conn:
            return int(conn.execute(query).scalar_one())

    def vacuum(self) -> None:
        """Give the space of deleted rows back; VACUUM runs outside any transaction."""
        try:
            if self.engine.dialect.name == "sqlite":
                self._vacuum_sqlite()
                return
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM (ANALYZE)")
        except STORE_REFUSALS as e:
            raise StorageError(f"store: vacuum failed: {str(e.orig).splitlines()[0]}") from e

    def _vacuum_sqlite(self) -> None:
        # The engine's "begin" hook would wrap any SQLAlchemy statement in BEGIN
        # IMMEDIATE, and VACUUM refuses to run in a transaction: use the driver directly.
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            try:
                raw.execute("VACUUM")
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:
                raise StorageError(f"store: vacuum failed: {e}") from e


def _prunable(articles_cutoff: datetime, alerts_cutoff: datetime | None) -> list[ColumnElement[bool]]:
    """Articles past retention that no kept alert and no unsent delivery needs."""
    kept_alert = MATCHES.c.article_id == ARTICLES.c.id
    if alerts_cutoff is not None:
        kept_alert &= or_(MATCHES.c.created_at.is_(None), MATCHES.c.created_at >= alerts_cutoff)
    unsent = (DELIVERIES.c.article_id == ARTICLES.c.id) & DELIVERIES.c.state.not_in(_DONE)
    return [ARTICLES.c.fetched_at < articles_cutoff, ~exists().where(kept_alert), ~exists().where(unsent)]


def _delete_articles(conn: Connection, ids: list[int]) -> Pruned:
    """Delete these articles with their alerts and finished deliveries.

    A delivery made due again meanwhile (``deliveries retry`` turns dead into pending)
    survives the first statement and keeps its article and alerts.
    """
    if not ids:
        return Pruned()
    deliveries = conn.execute(
        delete(DELIVERIES).where(DELIVERIES.c.article_id.in_(ids), DELIVERIES.c.state.in_(_DONE))
    ).rowcount
    held = select(DELIVERIES.c.article_id).where(DELIVERIES.c.article_id.in_(ids))
    matches = conn.execute(
        delete(MATCHES).where(MATCHES.c.article_id.in_(ids), MATCHES.c.article_id.not_in(held))
    ).rowcount
    _forget_in_stories(conn, ids, held)
    conn.execute(  # a row still waiting for the model: its article may no longer alert
        delete(ABOUT_QUEUE).where(ABOUT_QUEUE.c.article_id.in_(ids), ABOUT_QUEUE.c.article_id.not_in(held))
    )
    articles = conn.execute(
        delete(ARTICLES).where(ARTICLES.c.id.in_(ids), ARTICLES.c.id.not_in(held))
    ).rowcount
    return Pruned(articles, matches, deliveries)


def _not_listed(conn: Connection, rows: Sequence[Row[Any, Any, Any]]) -> list[int]:
    """The ids of these articles that their feed's latest document no longer lists.

    An article its feed still lists must stay, however old: deleted, it would be new
    again at the feed's next changed body, and alert, months after the fact (an entry
    that first-poll seeding held back, one whose alert retention let go, an undated
    one). The feed's record of stored items (``items.Record``, ADR 0019) names the key
    of every item of that document; a feed without one (its document could not be
    split into items) keeps the old rule: past retention, the article goes."""
    listed: dict[int, frozenset[str]] = {}
    feed_ids = sorted({row.feed_id for row in rows})
    if feed_ids:
        records = conn.execute(select(FEEDS.c.id, FEEDS.c.item_hashes).where(FEEDS.c.id.in_(feed_ids)))
        listed = {feed_id: frozenset(Record.decode(text).values()) for feed_id, text in records}
    return [row.id for row in rows if key_digest(row.key) not in listed.get(row.feed_id, frozenset())]


def _forget_in_stories(conn: Connection, ids: list[int], held: Select[tuple[int | None]]) -> None:
    """Stories outlive their pruned reports: the story keeps its counts and signature."""
    gone = [ARTICLES.c.id.in_(ids), ARTICLES.c.id.not_in(held)]
    pruned = select(ARTICLES.c.id).where(*gone)
    conn.execute(delete(STORY_ARTICLES).where(STORY_ARTICLES.c.article_id.in_(pruned)))
    conn.execute(update(STORIES).where(STORIES.c.first_article_id.in_(pruned)).values(first_article_id=None))
    conn.execute(update(STORY_ALERTS).where(STORY_ALERTS.c.article_id.in_(pruned)).values(article_id=None))
