"""The delivery outbox: which messages are due, and what happened when we sent them.

A delivery row is written with its article (``Store.save_poll``) and leaves the
``pending`` state only after the send returned: ``sent`` on success, or back to
``pending`` with a later ``next_attempt_at``, or ``dead`` once retries run out.
So a crash between send and mark re-sends that one message: the at-least-once window.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, func, or_, select, update

from monitor.models import Alert, ChannelStatus, Snippet
from monitor.store.tables import ARTICLES, DELIVERIES, FEEDS, MATCHES

_ALERT_QUERY = (
    select(
        DELIVERIES.c.id,
        DELIVERIES.c.channel,
        DELIVERIES.c.rules,
        DELIVERIES.c.attempts,
        DELIVERIES.c.article_id,
        DELIVERIES.c.message_key,
        DELIVERIES.c.done_targets,
        DELIVERIES.c.batched,
        DELIVERIES.c.notice_title,
        DELIVERIES.c.notice_body,
        DELIVERIES.c.created_at,
        ARTICLES.c.title,
        ARTICLES.c.link,
        ARTICLES.c.published_at,
        ARTICLES.c.fetched_at,
        FEEDS.c.name.label("feed"),
    )
    .outerjoin(ARTICLES, ARTICLES.c.id == DELIVERIES.c.article_id)
    .outerjoin(FEEDS, FEEDS.c.id == ARTICLES.c.feed_id)
)


class Outbox(ABC):
    """Delivery methods of the Store."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """One database transaction."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """One read-only transaction that never waits for writers."""

    def claim_due(
        self,
        now: datetime,
        lease: timedelta,
        *,
        ids: Sequence[int] | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Lease due deliveries (oldest first) so no other worker sends them, and return them.

        A lease that is never settled (the process died mid-send) expires, and the
        delivery becomes due again: that one message is the at-least-once window.
        """
        due = (
            select(DELIVERIES.c.id)
            .where(
                DELIVERIES.c.state == "pending",
                DELIVERIES.c.next_attempt_at <= now,
                or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until <= now),
            )
            .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            due = due.where(DELIVERIES.c.id.in_(list(ids)))
        with self.transaction() as conn:
            claimed = list(conn.execute(due).scalars())
            if not claimed:
                return []
            conn.execute(
                update(DELIVERIES).where(DELIVERIES.c.id.in_(claimed)).values(claimed_until=now + lease)
            )
            rows = conn.execute(_ALERT_QUERY.where(DELIVERIES.c.id.in_(claimed))).all()
            snippets = _snippets(conn, [r.article_id for r in rows])
        alerts = [_alert(row, snippets) for row in rows]
        return sorted(alerts, key=lambda a: claimed.index(a.delivery_id))

    def release_claims(self) -> int:
        """Forget every lease; safe only when no other process uses this database."""
        with self.transaction() as conn:
            result = conn.execute(
                update(DELIVERIES).where(DELIVERIES.c.claimed_until.is_not(None)).values(claimed_until=None)
            )
        return int(result.rowcount)

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        """The channel accepted the message."""
        with self.transaction() as conn:
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == delivery_id)
                .values(
                    state="sent",
                    sent_at=now,
                    attempts=DELIVERIES.c.attempts + 1,
                    last_error=None,
                    claimed_until=None,
                )
            )

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        retry_at: datetime | None,
        done_targets: frozenset[int] = frozenset(),
    ) -> None:
        """The send failed: try again at ``retry_at``, or give up (dead letter) if None.

        ``done_targets`` are the channel's URLs that did get it; retries skip them.
        """
        values: dict[str, Any] = {
            "attempts": DELIVERIES.c.attempts + 1,
            "last_error": error,
            "claimed_until": None,
            "done_targets": json.dumps(sorted(done_targets)),
        }
        if retry_at is None:
            values["state"] = "dead"
        else:
            values["next_attempt_at"] = retry_at
        with self.transaction() as conn:
            conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(**values))

    def defer(self, delivery_ids: Sequence[int], until: datetime) -> None:
        """Hold deliveries over a channel's hourly limit; they go out as one summary."""
        with self.transaction() as conn:
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(list(delivery_ids)))
                .values(next_attempt_at=until, batched=True, claimed_until=None)
            )

    def count_sent(self, channel: str, since: datetime) -> int:
        """Individual (not batched) messages a channel was sent since ``since``."""
        query = select(func.count()).where(
            DELIVERIES.c.channel == channel,
            DELIVERIES.c.state == "sent",
            DELIVERIES.c.batched.is_(False),
            DELIVERIES.c.sent_at >= since,
        )
        with self.transaction() as conn:
            return int(conn.execute(query).scalar_one())

    def make_due(self, now: datetime, channel: str | None = None) -> int:
        """Every pending or dead delivery (of one channel, or all) becomes due now.

        Deliveries another worker is sending right now (an unexpired claim) are left alone.
        """
        query = update(DELIVERIES).where(
            DELIVERIES.c.state.in_(("pending", "dead")),
            or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until <= now),
        )
        if channel is not None:
            query = query.where(DELIVERIES.c.channel == channel)
        with self.transaction() as conn:
            result = conn.execute(query.values(state="pending", next_attempt_at=now))
        return int(result.rowcount)

    def channel_statuses(self) -> list[ChannelStatus]:
        """Per channel: pending (never tried), retrying, sent and dead counts."""
        pending = (DELIVERIES.c.state == "pending") & (DELIVERIES.c.attempts == 0)
        retrying = (DELIVERIES.c.state == "pending") & (DELIVERIES.c.attempts > 0)
        counts = (
            select(
                DELIVERIES.c.channel,
                func.sum(case((pending, 1), else_=0)),
                func.sum(case((retrying, 1), else_=0)),
                func.sum(case((DELIVERIES.c.state == "sent", 1), else_=0)),
                func.sum(case((DELIVERIES.c.state == "dead", 1), else_=0)),
            )
            .group_by(DELIVERIES.c.channel)
            .order_by(DELIVERIES.c.channel)
        )
        with self.reading() as conn:
            rows = conn.execute(counts).all()
            errors = _last_errors(conn)
        return [
            ChannelStatus(
                channel=r[0],
                pending=int(r[1] or 0),
                retrying=int(r[2] or 0),
                sent=int(r[3] or 0),
                dead=int(r[4] or 0),
                last_error=errors.get(r[0]),
            )
            for r in rows
        ]


def _last_errors(conn: Connection) -> dict[str, str]:
    """The most recent error per channel among deliveries not yet sent."""
    query = (
        select(DELIVERIES.c.channel, DELIVERIES.c.last_error)
        .where(DELIVERIES.c.state != "sent", DELIVERIES.c.last_error.is_not(None))
        .order_by(DELIVERIES.c.id)
    )
    return {channel: error for channel, error in conn.execute(query)}


def _snippets(conn: Connection, article_ids: Sequence[int | None]) -> dict[tuple[int, str], Snippet]:
    """(article id, rule) -> the snippet stored with that match."""
    article_ids = [i for i in article_ids if i is not None]
    if not article_ids:
        return {}
    query = select(MATCHES.c.article_id, MATCHES.c.rule, MATCHES.c.snippet, MATCHES.c.highlights).where(
        MATCHES.c.article_id.in_(set(article_ids))
    )
    return {
        (row.article_id, row.rule): Snippet(
            text=row.snippet,
            highlights=tuple((int(s), int(e)) for s, e in json.loads(row.highlights)),
        )
        for row in conn.execute(query)
    }


def _alert(row: Any, snippets: dict[tuple[int, str], Snippet]) -> Alert:
    """An outbox row as an Alert; a feed-health notice has no article behind it."""
    rules = tuple(json.loads(row.rules))
    if row.article_id is None:
        feed, title, link, published = "monitor", row.notice_title or "", None, row.created_at
        snippet = Snippet(text=row.notice_body or "")
    else:
        feed, title, link, published = row.feed, row.title, row.link, row.published_at or row.fetched_at
        snippet = next(
            (snippets[(row.article_id, r)] for r in rules if (row.article_id, r) in snippets),
            Snippet(text=""),
        )
    return Alert(
        delivery_id=row.id,
        channel=row.channel,
        feed=feed,
        title=title,
        link=link,
        published=published,
        rules=rules,
        snippet=snippet,
        attempts=row.attempts,
        message_key=row.message_key,
        done_targets=frozenset(int(i) for i in json.loads(row.done_targets)),
        batched=bool(row.batched),
    )
