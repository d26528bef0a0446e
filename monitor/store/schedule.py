"""The feeds table as the schedule: which feed is due, who polls it, what its last poll said.

Leases: ``claim_feeds`` gives each claimed feed a token (``leased_by``, the poller's
name and a random part). Every write of that poll's outcome names the token and
changes the row only while the token is still there; a poll that outlived its lease
(and lost the feed to another poller) gets ``LeaseLost`` instead of clearing the
other poller's lease. A lease that is never settled expires at ``leased_until``.

Clock jumps: a ``next_poll_at`` further ahead than the longest wait the configuration
allows (``horizon``) cannot have been written by this configuration on a sane clock,
so the feed counts as due.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.errors import LeaseLost
from monitor.identity import digest
from monitor.models import FeedState, FeedStatus
from monitor.store.tables import ARTICLES, DELIVERIES, FEEDS, MATCHES

LEASE_SETTLED: dict[str, Any] = {"leased_until": None, "leased_by": None}
"""Every poll outcome ends the lease."""


CLOCK_SLACK = timedelta(days=1)
"""How far apart the clocks of daemons sharing a database may be. A lease is always set
to the claimer's ``now`` plus the lease, so one that ends further ahead than the lease
and this was written by a clock that ran fast (a VM restored, NTP stepping back days):
it is free, instead of keeping its feed, or its messages, unpolled or unsent for as long
as the clock was ahead."""


class FeedSchedule(ABC):
    """Feed methods of the Store."""

    @property
    @abstractmethod
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """One read-write transaction."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """One read-only transaction that never waits for writers."""

    def _ignore_conflicts(self, table: Table, unique: list[str] | None) -> sqlite.Insert | postgresql.Insert:
        """``INSERT ... ON CONFLICT (unique) DO NOTHING`` for this backend (any conflict: None)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=unique)
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=unique)

    def sync_feeds(self, feeds: Sequence[tuple[str, str]], now: datetime) -> None:
        """Make the feeds table match the config: (name, url) pairs, matched by url. A feed
        that comes back to the config is enabled again, due now: a feed disabled by a
        410 is re-enabled by taking it out of the config and putting it back."""
        wanted = dict((url, name) for name, url in feeds)
        with self.transaction() as conn:
            existing = {row.url: row for row in conn.execute(select(FEEDS))}
            for url, name in wanted.items():
                row = existing.get(url)
                if row is None:  # another daemon may insert it at the same moment
                    new = {"url": url, "name": name, "active": True, "created_at": now, "next_poll_at": now}
                    conn.execute(self._ignore_conflicts(FEEDS, ["url"]), [new])
                elif not row.active:
                    back = {"name": name, "active": True, "disabled_reason": None, "next_poll_at": now}
                    conn.execute(update(FEEDS).where(FEEDS.c.id == row.id).values(**back))
                elif row.name != name:
                    conn.execute(update(FEEDS).where(FEEDS.c.id == row.id).values(name=name))
            gone = [row.id for url, row in existing.items() if url not in wanted and row.active]
            if gone:
                conn.execute(update(FEEDS).where(FEEDS.c.id.in_(gone)).values(active=False))

    def feeds(self, *, due_at: datetime | None = None) -> list[FeedState]:
        """Active feeds, all of them or only those due at ``due_at``, soonest first."""
        query = select(FEEDS).where(FEEDS.c.active.is_(True), FEEDS.c.disabled_reason.is_(None))
        if due_at is not None:
            query = query.where((FEEDS.c.next_poll_at.is_(None)) | (FEEDS.c.next_poll_at <= due_at))
        query = query.order_by(FEEDS.c.next_poll_at, FEEDS.c.id)
        with self.reading() as conn:
            return [feed_state(row, leased=False) for row in conn.execute(query)]

    def claim_feeds(
        self,
        now: datetime,
        lease: timedelta,
        owner: str,
        limit: int,
        *,
        due_only: bool = True,
        horizon: timedelta | None = None,
        exclude: Collection[int] = (),
    ) -> list[FeedState]:
        """Lease up to ``limit`` due feeds for this poller (``FOR UPDATE SKIP LOCKED``).

        Several daemons on one PostgreSQL each get different feeds. Each returned
        FeedState carries its lease token. ``horizon``: the longest wait the config
        allows; a feed scheduled further ahead than that is due now (a clock jump).
        ``exclude``: feeds this poller is polling already (never claimed twice).
        """
        if limit <= 0:
            return []
        when = [FEEDS.c.next_poll_at.is_(None), FEEDS.c.next_poll_at <= now]
        if horizon is not None:
            when.append(FEEDS.c.next_poll_at > now + horizon)
        free = [FEEDS.c.leased_until.is_(None), FEEDS.c.leased_until <= now]
        free.append(FEEDS.c.leased_until > now + lease + CLOCK_SLACK)  # written by a clock running fast
        due = select(FEEDS.c.id).where(
            FEEDS.c.active.is_(True),
            FEEDS.c.disabled_reason.is_(None),
            or_(*free),
        )
        if due_only:
            due = due.where(or_(*when))
        if exclude:
            due = due.where(FEEDS.c.id.not_in(list(exclude)))
        due = due.order_by(FEEDS.c.next_poll_at, FEEDS.c.id).limit(limit).with_for_update(skip_locked=True)
        token = f"{owner}#{uuid.uuid4().hex[:12]}"
        with self.transaction() as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                update(FEEDS).where(FEEDS.c.id.in_(ids)).values(leased_until=now + lease, leased_by=token)
            )
            # The claim's own order, ties by id: PostgreSQL returns rows that tie on
            # next_poll_at in whatever order its heap holds them, which changes with updates.
            soonest = (FEEDS.c.next_poll_at, FEEDS.c.id)
            rows = conn.execute(select(FEEDS).where(FEEDS.c.id.in_(ids)).order_by(*soonest)).all()
        return [feed_state(row, leased=True) for row in rows]

    def renew_lease(self, feed_id: int, lease: str | None, until: datetime) -> None:
        """Keep a long poll's lease (LeaseLost when another poller has the feed now)."""
        if lease is None:
            return
        with self.transaction() as conn:
            _owned_update(conn, feed_id, lease, {"leased_until": until})

    def renew_leases(self, held: Sequence[tuple[int, str]], until: datetime) -> list[int]:
        """Keep the leases of polls still running: (feed id, token) pairs, one transaction.

        Returns the ids whose lease passed to another poller (their polls will get
        LeaseLost when they write).
        """
        lost = []
        with self.transaction() as conn:
            for feed_id, lease in held:
                renew = update(FEEDS).where(FEEDS.c.id == feed_id, FEEDS.c.leased_by == lease)
                if conn.execute(renew.values(leased_until=until)).rowcount == 0:
                    lost.append(feed_id)
        return lost

    def release_feeds(self, owner: str | None = None) -> int:
        """Drop feed leases (this owner's, or all: only safe with a single daemon)."""
        query = update(FEEDS).where(FEEDS.c.leased_until.is_not(None))
        if owner is not None:
            query = query.where(FEEDS.c.leased_by.startswith(owner + "#", autoescape=True))
        with self.transaction() as conn:
            return int(conn.execute(query.values(**LEASE_SETTLED)).rowcount)

    def record_unchanged(
        self, feed_id: int, now: datetime, next_poll_at: datetime, *, lease: str | None = None
    ) -> None:
        """A 304 or an identical body: success, nothing new."""
        with self.transaction() as conn:
            _owned_update(conn, feed_id, lease, success_values(now, next_poll_at))

    def record_moved(self, feed_id: int, new_url: str, *, lease: str | None = None) -> None:
        """A permanent redirect: fetch from the new address from now on."""
        with self.transaction() as conn:
            _owned_update(conn, feed_id, lease, {"fetch_url": new_url})

    def record_public(self, feed_id: int, now: datetime, *, lease: str | None = None) -> None:
        """The feed was fetched as a public origin: it stays one after restarts (ADR 0026)."""
        with self.transaction() as conn:
            _owned_update(conn, feed_id, lease, {"public_seen_at": now})

    def disable(self, feed_id: int, reason: str, now: datetime, *, lease: str | None = None) -> None:
        """Stop polling a feed (HTTP 410) until its configured URL changes."""
        values = {"disabled_reason": reason, "last_poll_at": now, "last_error": reason, "last_error_at": now}
        with self.transaction() as conn:
            _owned_update(conn, feed_id, lease, {**values, **LEASE_SETTLED})

    def record_failure(
        self, feed_id: int, message: str, now: datetime, next_poll_at: datetime, *, lease: str | None = None
    ) -> int:
        """Record a failed poll on the feed; returns the consecutive failure count."""
        values = {
            "last_poll_at": now,
            "last_error": message,
            "last_error_at": now,
            "error_count": FEEDS.c.error_count + 1,
            "poll_count": FEEDS.c.poll_count + 1,
            "next_poll_at": next_poll_at,
            **LEASE_SETTLED,
        }
        with self.transaction() as conn:
            _owned_update(conn, feed_id, lease, values)
            count = conn.execute(select(FEEDS.c.error_count).where(FEEDS.c.id == feed_id)).scalar_one()
        return int(count)

    def recent_published(self, feed_id: int, limit: int = 30) -> list[datetime]:
        """Publication times of a feed's latest articles (to learn its usual rhythm)."""
        query = (
            select(ARTICLES.c.published_at)
            .where(ARTICLES.c.feed_id == feed_id, ARTICLES.c.published_at.is_not(None))
            .order_by(ARTICLES.c.published_at.desc())
            .limit(limit)
        )
        with self.reading() as conn:
            return list(conn.execute(query).scalars())

    def set_health(
        self, feed_id: int, health: str, notice: tuple[str, str, str] | None, now: datetime
    ) -> None:
        """Record a health change and, in the same transaction, queue its notice.

        ``notice`` is (channel, title, body); it goes through the outbox like an alert.
        """
        with self.transaction() as conn:
            conn.execute(update(FEEDS).where(FEEDS.c.id == feed_id).values(health=health))
            if notice is None:
                return
            channel, title, body = notice
            conn.execute(
                insert(DELIVERIES).values(
                    article_id=None,
                    channel=channel,
                    notice_title=title,
                    notice_body=body,
                    message_key=digest(str(feed_id), "health", health, now.isoformat()),
                    rules=json.dumps(["feed health"]),
                    state="pending",
                    next_attempt_at=now,
                    created_at=now,
                )
            )

    def feed_status(self, feed_id: int) -> FeedStatus:
        """One feed's state without counting its articles (cheap: read after every poll).

        ``articles`` and ``alerts`` are 0 here; ``feed_statuses`` counts them.
        """
        query = select(FEEDS, literal(0), literal(0)).where(FEEDS.c.id == feed_id)
        with self.reading() as conn:
            return _feed_status(conn.execute(query).one())

    def feed_statuses(self, feed_id: int | None = None) -> list[FeedStatus]:
        """Every feed (or one) with counts of its articles and alerts."""
        articles = select(ARTICLES.c.feed_id, func.count().label("n")).group_by(ARTICLES.c.feed_id).subquery()
        alerts = (
            select(ARTICLES.c.feed_id, func.count().label("n"))
            .select_from(MATCHES.join(ARTICLES, MATCHES.c.article_id == ARTICLES.c.id))
            .group_by(ARTICLES.c.feed_id)
            .subquery()
        )
        query = (
            select(FEEDS, func.coalesce(articles.c.n, 0), func.coalesce(alerts.c.n, 0))
            .outerjoin(articles, articles.c.feed_id == FEEDS.c.id)
            .outerjoin(alerts, alerts.c.feed_id == FEEDS.c.id)
            .order_by(FEEDS.c.active.desc(), FEEDS.c.name)
        )
        if feed_id is not None:
            query = query.where(FEEDS.c.id == feed_id)
        with self.reading() as conn:
            return [_feed_status(row) for row in conn.execute(query)]


def claim_held(conn: Connection, feed_id: int, lease: str | None) -> None:
    """Inside a write transaction: LeaseLost unless ``lease`` still holds the feed.

    On PostgreSQL the row stays locked until the commit, so the lease cannot pass to
    another poller between this check and the poll's writes; SQLite's BEGIN
    IMMEDIATE already serialises writers.
    """
    if lease is None:
        return
    query = select(FEEDS.c.leased_by).where(FEEDS.c.id == feed_id).with_for_update()
    holder = conn.execute(query).scalar_one_or_none()
    if holder != lease:
        raise LeaseLost(f"store: the lease on feed {feed_id} passed to another poller; results dropped")


def _owned_update(conn: Connection, feed_id: int, lease: str | None, values: dict[str, Any]) -> None:
    """Update the feed row only while ``lease`` holds it (None: no lease to check)."""
    query = update(FEEDS).where(FEEDS.c.id == feed_id)
    if lease is not None:
        query = query.where(FEEDS.c.leased_by == lease)
    if conn.execute(query.values(**values)).rowcount == 0 and lease is not None:
        raise LeaseLost(f"store: the lease on feed {feed_id} passed to another poller; results dropped")


def success_values(now: datetime, next_poll_at: datetime) -> dict[str, Any]:
    """A successful poll's feed state (and the end of its lease)."""
    return {
        "last_poll_at": now,
        "last_success_at": now,
        "last_error": None,
        "error_count": 0,
        "poll_count": FEEDS.c.poll_count + 1,
        "next_poll_at": next_poll_at,
        **LEASE_SETTLED,
    }


def feed_state(row: Any, *, leased: bool) -> FeedState:
    """A feeds row as the poller sees it; ``leased``: with the lease just claimed."""
    return FeedState(
        id=row.id,
        name=row.name,
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        first_poll=row.last_success_at is None,
        error_count=row.error_count,
        fetch_url=row.fetch_url,
        body_hash=row.body_hash,
        lease=row.leased_by if leased else None,
        items=row.item_hashes,
        last_new_at=row.last_new_at,
        health=row.health,
        public_seen=row.public_seen_at is not None,
    )


def _feed_status(row: Any) -> FeedStatus:
    return FeedStatus(
        name=row.name,
        url=row.url,
        active=row.active,
        last_poll_at=row.last_poll_at,
        last_success_at=row.last_success_at,
        last_error=row.last_error,
        error_count=row.error_count,
        next_poll_at=row.next_poll_at,
        articles=int(row[-2]),
        alerts=int(row[-1]),
        disabled=row.disabled_reason,
        fetch_url=row.fetch_url,
        last_new_at=row.last_new_at,
        created_at=row.created_at,
        health=row.health,
        last_warning=row.last_warning,
        last_warning_at=row.last_warning_at,
    )
