"""The about queue: articles waiting for the model, claimed like feeds (ADR 0020).

A poll stores its articles and, in the same transaction, one row for each article that
some ``about`` rule may still match (``queue_rows``). The about job claims a batch of
rows with a token (``claim_about``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
daemons never take the same row), judges the articles, and settles every row it holds:
done rows go with the alerts they made (``Store.save_about``), failed rows come back
later (``fail_about``: backoff, then ``gave_up`` with the reason). A claim that is never
settled (a crash) expires at ``claimed_until`` and the row is claimed again.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from monitor.models import Entry
from monitor.store.tables import ABOUT_QUEUE, ARTICLES, FEEDS

MAX_ATTEMPTS = 5
"""Tries before a row ends ``gave_up`` (the model failed on the article each time)."""
FIRST_BACKOFF = timedelta(minutes=1)
LONGEST_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Queued:
    """A claimed row: the article as the rules read it, its feed, and how often it was tried."""

    article_id: int
    feed_id: int
    feed: str
    entry: Entry
    attempts: int


@dataclass(frozen=True, slots=True)
class AboutClaim:
    """What ``claim_about`` took: the token that settles it, and the articles."""

    token: str
    items: tuple[Queued, ...]


@dataclass(frozen=True, slots=True)
class AboutBacklog:
    """The queue at a glance, for ``monitor status`` and the metrics."""

    pending: int = 0
    gave_up: int = 0
    oldest: datetime | None = None  # when the oldest pending row was queued


def backoff(attempts: int) -> timedelta:
    """The wait before try ``attempts + 1``: one minute, doubling, at most an hour."""
    return min(LONGEST_BACKOFF, FIRST_BACKOFF * (1 << max(0, min(attempts - 1, 16))))


def queue_rows(conn: Connection, article_ids: Collection[int], now: datetime) -> None:
    """Queue these just-inserted articles for the model (inside the poll's transaction)."""
    rows = [
        {"article_id": i, "state": "pending", "queued_at": now, "not_before": now, "attempts": 0}
        for i in sorted(article_ids)
    ]
    if rows:
        conn.execute(ABOUT_QUEUE.insert(), rows)


def ours(token: str, ids: Collection[int]) -> list[Any]:
    """The rows among ``ids`` that this claim still holds."""
    return [ABOUT_QUEUE.c.article_id.in_(list(ids)), ABOUT_QUEUE.c.claimed_by == token]


class AboutQueue(ABC):
    """About-queue methods of the Store."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """One read-write transaction."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """One read-only transaction that never waits for writers."""

    def claim_about(self, now: datetime, lease: timedelta, owner: str, limit: int) -> AboutClaim:
        """Claim up to ``limit`` due rows, oldest first, for ``lease``; empty when none is due."""
        token = f"{owner}#{uuid.uuid4().hex[:12]}"
        if limit <= 0:
            return AboutClaim(token, ())
        due = select(ABOUT_QUEUE.c.article_id).where(
            ABOUT_QUEUE.c.state == "pending",
            or_(ABOUT_QUEUE.c.not_before.is_(None), ABOUT_QUEUE.c.not_before <= now),
            or_(ABOUT_QUEUE.c.claimed_until.is_(None), ABOUT_QUEUE.c.claimed_until <= now),
        )
        with self.reading() as conn:  # the job ticks every few seconds: an idle tick writes nothing
            if conn.execute(due.limit(1)).first() is None:
                return AboutClaim(token, ())
        due = due.order_by(ABOUT_QUEUE.c.queued_at, ABOUT_QUEUE.c.article_id).limit(limit)
        with self.transaction() as conn:
            ids = list(conn.execute(due.with_for_update(skip_locked=True)).scalars())
            if not ids:
                return AboutClaim(token, ())
            conn.execute(
                update(ABOUT_QUEUE)
                .where(ABOUT_QUEUE.c.article_id.in_(ids))
                .values(claimed_by=token, claimed_until=now + lease)
            )
            query = (
                select(ARTICLES, FEEDS.c.name.label("feed_name"), ABOUT_QUEUE.c.attempts)
                .join(FEEDS, FEEDS.c.id == ARTICLES.c.feed_id)
                .join(ABOUT_QUEUE, ABOUT_QUEUE.c.article_id == ARTICLES.c.id)
                .where(ARTICLES.c.id.in_(ids))
                .order_by(ARTICLES.c.id)
            )
            rows = conn.execute(query).all()
        items = tuple(Queued(row.id, row.feed_id, row.feed_name, entry_of(row), row.attempts) for row in rows)
        return AboutClaim(token, items)

    def fail_about(self, token: str, errors: Mapping[int, str], now: datetime) -> list[int]:
        """Give these rows back with their reason: tried again after a backoff, or, at
        ``MAX_ATTEMPTS``, ``gave_up`` for good. Returns the ids that gave up."""
        gave_up = []
        with self.transaction() as conn:
            held = conn.execute(
                select(ABOUT_QUEUE.c.article_id, ABOUT_QUEUE.c.attempts).where(*ours(token, errors))
            ).all()
            for article_id, attempts in held:
                tries = attempts + 1
                final = tries >= MAX_ATTEMPTS
                conn.execute(
                    update(ABOUT_QUEUE)
                    .where(ABOUT_QUEUE.c.article_id == article_id, ABOUT_QUEUE.c.claimed_by == token)
                    .values(
                        attempts=tries,
                        state="gave_up" if final else "pending",
                        not_before=now + backoff(tries),
                        claimed_by=None,
                        claimed_until=None,
                        last_error=errors[article_id][:1000],
                    )
                )
                if final:
                    gave_up.append(article_id)
        return gave_up

    def release_about(self, token: str, ids: Collection[int]) -> None:
        """Give rows back untried (a shutdown, a configuration that no longer has the rule)."""
        if ids:
            with self.transaction() as conn:
                conn.execute(
                    update(ABOUT_QUEUE).where(*ours(token, ids)).values(claimed_by=None, claimed_until=None)
                )

    def release_about_claims(self) -> int:
        """End every claim (one daemon per SQLite file starts with none of its own)."""
        with self.transaction() as conn:
            held = ABOUT_QUEUE.c.claimed_by.is_not(None)
            ended = update(ABOUT_QUEUE).where(held).values(claimed_by=None, claimed_until=None)
            return int(conn.execute(ended).rowcount)

    def drop_about(self, token: str, ids: Collection[int]) -> None:
        """Delete held rows that need no judging any more (no about rule is open for them)."""
        if ids:
            with self.transaction() as conn:
                conn.execute(delete(ABOUT_QUEUE).where(*ours(token, ids)))

    def about_backlog(self) -> AboutBacklog:
        """How many rows wait, how many gave up, and since when the oldest waits."""
        query = select(ABOUT_QUEUE.c.state, func.count(), func.min(ABOUT_QUEUE.c.queued_at)).group_by(
            ABOUT_QUEUE.c.state
        )
        with self.reading() as conn:
            rows = {state: (count, oldest) for state, count, oldest in conn.execute(query)}
        pending, oldest = rows.get("pending", (0, None))
        if isinstance(oldest, datetime) and oldest.tzinfo is None:  # func.min bypasses the column type
            oldest = oldest.replace(tzinfo=UTC)
        return AboutBacklog(int(pending), int(rows.get("gave_up", (0, None))[0]), oldest)

    def about_failures(self, limit: int = 20) -> list[tuple[int, str, str]]:
        """Rows that gave up: (article id, title, last error), newest first."""
        query = (
            select(ABOUT_QUEUE.c.article_id, ARTICLES.c.title, ABOUT_QUEUE.c.last_error)
            .join(ARTICLES, ARTICLES.c.id == ABOUT_QUEUE.c.article_id)
            .where(ABOUT_QUEUE.c.state == "gave_up")
            .order_by(ABOUT_QUEUE.c.not_before.desc())
            .limit(limit)
        )
        with self.reading() as conn:
            return [(int(i), str(t), str(e or "")) for i, t, e in conn.execute(query)]


def entry_of(row: Any) -> Entry:
    """A stored article row as the Entry rules read (the fields the poll stored)."""
    return Entry(
        key=row.key,
        title=row.title,
        link=row.link,
        author=row.author,
        published=row.published_at or row.fetched_at or datetime(1970, 1, 1, tzinfo=UTC),
        summary_html=row.summary_html,
        summary_text=row.summary_text,
        content_html=row.content_html,
        content_text=row.content_text,
        dated=row.published_at is not None,
        page_text=row.page_text,
        page_error=row.page_error,
    )


def held_ids(conn: Connection, token: str, ids: Sequence[int]) -> set[int]:
    """Of these ids, the rows this claim still holds (a row whose claim expired and went
    to another owner is that owner's to settle), locked on PostgreSQL until the
    transaction ends, so another daemon cannot claim one between this read and the
    settling writes (SQLite's writer already holds the whole database)."""
    if not ids:
        return set()
    query = select(ABOUT_QUEUE.c.article_id).where(*ours(token, ids)).with_for_update()
    return set(conn.execute(query).scalars())
