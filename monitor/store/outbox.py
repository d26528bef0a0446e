"""The delivery outbox: which messages are due, who is sending them, and what happened.

A delivery row is written with its article (``Store.save_poll``) and leaves the
``pending`` state only after the send returned: ``sent`` on success, or back to
``pending`` with a later ``next_attempt_at``, or ``dead`` once retries run out.

Claims are owned. ``claim_due`` stamps the rows it takes with a fresh token and a
deadline; renewing, settling, deferring and releasing name that token and change
nothing (returning so) once the row belongs to another claim: its deadline passed and
another worker took it. A late worker can therefore never settle, or reopen, a message
someone else is sending. A crash between send and settle re-sends that one message once
the deadline passes: the at-least-once window.

``claim_due(per_hour=...)`` enforces ``max_per_hour`` in the database: one row per
(channel, clock hour) counts the individual messages given out, raised by a conditional
upsert in the claiming transaction, so threads and daemons sharing the database can
never together exceed the limit.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.models import Alert, ChannelStatus, Snippet, StoryRef
from monitor.store.json_columns import read_json
from monitor.store.schedule import CLOCK_SLACK
from monitor.store.story_refs import story_refs
from monitor.store.tables import ARTICLES, DELIVERIES, FEEDS, MATCHES, QUOTA

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
        DELIVERIES.c.story_id,
        DELIVERIES.c.kind,
        ARTICLES.c.title,
        ARTICLES.c.link,
        ARTICLES.c.published_at,
        ARTICLES.c.fetched_at,
        FEEDS.c.name.label("feed"),
    )
    .outerjoin(ARTICLES, ARTICLES.c.id == DELIVERIES.c.article_id)
    .outerjoin(FEEDS, FEEDS.c.id == ARTICLES.c.feed_id)
)


_RELEASED: dict[str, Any] = {"claimed_until": None, "claim_token": None}


@dataclass(frozen=True, slots=True)
class Claim:
    """Deliveries leased to one worker: the token that proves it, and until when."""

    token: str
    until: datetime
    alerts: tuple[Alert, ...] = ()
    held: tuple[Alert, ...] = ()  # over the hourly limit: deferred to the next hour's summary

    @property
    def ids(self) -> list[int]:
        """The claimed deliveries' ids, oldest first."""
        return [a.delivery_id for a in self.alerts]


def new_token() -> str:
    """A claim owner token: unique per claim, and readable (host and pid) when debugging."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


def _due(now: datetime, lease: timedelta | None = None) -> list[ColumnElement[bool]]:
    """Pending, due, and not claimed by anyone (or the claim's deadline has passed, or,
    knowing the ``lease``, lies further ahead than a claim made now could: a fast clock
    wrote it, ``schedule.CLOCK_SLACK``)."""
    free = [DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until <= now]
    if lease is not None:
        free.append(DELIVERIES.c.claimed_until > now + lease + CLOCK_SLACK)
    return [DELIVERIES.c.state == "pending", DELIVERIES.c.next_attempt_at <= now, or_(*free)]


def _ours(token: str, ids: Collection[int]) -> list[ColumnElement[bool]]:
    """Rows of this claim that are still ours to settle (nobody has claimed them since)."""
    return [
        DELIVERIES.c.id.in_(list(ids)),
        DELIVERIES.c.claim_token == token,
        DELIVERIES.c.state == "pending",
    ]


def clock_hour(now: datetime) -> datetime:
    """The start of the clock hour (UTC) that ``max_per_hour`` counts ``now`` in."""
    return now.replace(minute=0, second=0, microsecond=0)


class Outbox(ABC):
    """Delivery methods of the Store."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """One database transaction."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """One read-only transaction (on SQLite it does not take the write lock)."""

    def due_channels(
        self, now: datetime, *, ids: Sequence[int] | None = None, lease: timedelta | None = None
    ) -> list[str]:
        """Channels with a delivery due now that nobody is sending (of ``ids``, if given)."""
        due = _due(now, lease)
        query = select(DELIVERIES.c.channel).where(*due).distinct().order_by(DELIVERIES.c.channel)
        if ids is not None:
            query = query.where(DELIVERIES.c.id.in_(list(ids)))
        with self.reading() as conn:
            return list(conn.execute(query).scalars())

    def claim_due(
        self,
        now: datetime,
        lease: timedelta,
        *,
        channel: str | None = None,
        ids: Sequence[int] | None = None,
        batched: bool | None = None,
        limit: int = 100,
        per_hour: int | None = None,
    ) -> Claim:
        """Lease due deliveries (oldest first) under a new token, so no other worker sends them.

        A claim that is never settled (the worker died mid-send) expires at ``now +
        lease`` and the deliveries become due again: that one message is the
        at-least-once window. ``batched`` picks individual (False) or batched (True) rows.

        ``per_hour`` (with ``channel``): each claimed delivery takes one of the channel's
        messages of this clock hour, in the same transaction; once the hour is full the
        rest are held for the next hour's summary instead (``Claim.held``).
        """
        due = (
            select(DELIVERIES.c.id)
            .where(*_due(now, lease))
            .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if channel is not None:
            due = due.where(DELIVERIES.c.channel == channel)
        if ids is not None:
            due = due.where(DELIVERIES.c.id.in_(list(ids)))
        if batched is not None:
            due = due.where(DELIVERIES.c.batched.is_(batched))
        token, until = new_token(), now + lease
        with self.transaction() as conn:
            claimed = list(conn.execute(due).scalars())
            if not claimed:
                return Claim(token, until)
            held = _over_quota(conn, claimed, channel, now, per_hour)
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_([i for i in claimed if i not in held]))
                .values(claimed_until=until, claim_token=token)
            )
            if held:
                next_hour = clock_hour(now) + timedelta(hours=1)
                conn.execute(
                    update(DELIVERIES)
                    .where(DELIVERIES.c.id.in_(held))
                    .values(next_attempt_at=next_hour, batched=True, **_RELEASED)
                )
            rows = conn.execute(_ALERT_QUERY.where(DELIVERIES.c.id.in_(claimed))).all()
            snippets = _snippets(conn, [r.article_id for r in rows])
            refs = story_refs(conn, [r.story_id for r in rows if r.story_id is not None])
        alerts = sorted(
            (_alert(row, snippets, refs) for row in rows), key=lambda a: claimed.index(a.delivery_id)
        )
        return Claim(
            token,
            until,
            tuple(a for a in alerts if a.delivery_id not in held),
            tuple(a for a in alerts if a.delivery_id in held),
        )

    def renew(self, token: str, until: datetime) -> int:
        """Push the deadline of a claim's unsettled rows to ``until``; how many are still ours."""
        with self.transaction() as conn:
            result = conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.claim_token == token, DELIVERIES.c.state == "pending")
                .values(claimed_until=until)
            )
        return int(result.rowcount)

    def release(self, token: str) -> int:
        """Give back a claim's unsettled rows at once (due again for anyone)."""
        with self.transaction() as conn:
            result = conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.claim_token == token, DELIVERIES.c.state == "pending")
                .values(**_RELEASED)
            )
        return int(result.rowcount)

    def release_claims(self) -> int:
        """Forget every claim; safe only when no other process uses this database."""
        with self.transaction() as conn:
            result = conn.execute(
                update(DELIVERIES).where(DELIVERIES.c.claimed_until.is_not(None)).values(**_RELEASED)
            )
        return int(result.rowcount)

    def mark_sent(self, token: str, delivery_ids: Collection[int], now: datetime) -> set[int]:
        """The channel accepted the message: the ids settled (those still ours)."""
        query = (
            update(DELIVERIES)
            .where(*_ours(token, delivery_ids))
            .values(
                state="sent", sent_at=now, attempts=DELIVERIES.c.attempts + 1, last_error=None, **_RELEASED
            )
            .returning(DELIVERIES.c.id)
        )
        with self.transaction() as conn:
            return set(conn.execute(query).scalars())

    def mark_failed(
        self,
        token: str,
        delivery_id: int,
        error: str,
        retry_at: datetime | None,
        done_targets: frozenset[int] = frozenset(),
    ) -> bool:
        """The send failed: try again at ``retry_at``, or give up (dead letter) if None.

        ``done_targets`` are the channel's URLs that did get it; retries skip them.
        False when the claim is no longer ours (nothing was changed).
        """
        values: dict[str, Any] = {
            "attempts": DELIVERIES.c.attempts + 1,
            "last_error": error,
            "done_targets": json.dumps(sorted(done_targets)),
            **_RELEASED,
        }
        if retry_at is None:
            values["state"] = "dead"
        else:
            values["next_attempt_at"] = retry_at
        with self.transaction() as conn:
            result = conn.execute(update(DELIVERIES).where(*_ours(token, [delivery_id])).values(**values))
        return bool(result.rowcount)

    def defer(self, token: str, delivery_ids: Collection[int], until: datetime) -> int:
        """Hold deliveries over a channel's hourly limit; they go out as one summary."""
        with self.transaction() as conn:
            result = conn.execute(
                update(DELIVERIES)
                .where(*_ours(token, delivery_ids))
                .values(next_attempt_at=until, batched=True, **_RELEASED)
            )
        return int(result.rowcount)

    def quota_used(self, channel: str, now: datetime) -> int:
        """Individual messages given out to a channel in the clock hour of ``now``."""
        query = select(QUOTA.c.used).where(QUOTA.c.channel == channel, QUOTA.c.hour == clock_hour(now))
        with self.reading() as conn:
            return int(conn.execute(query).scalar() or 0)

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


def _over_quota(
    conn: Connection, claimed: Sequence[int], channel: str | None, now: datetime, per_hour: int | None
) -> list[int]:
    """Take a unit of the hour's quota for each claimed delivery in order; those over it."""
    if per_hour is None or channel is None:
        return []
    hour = clock_hour(now)
    for position in range(len(claimed)):
        used = conn.execute(_take(conn.dialect.name, channel, hour, per_hour)).scalar()
        if used is None:  # the hour is full (units are never given back): hold the rest
            return list(claimed[position:])
        if used == 1:  # a new hour for this channel: forget the ones before
            conn.execute(delete(QUOTA).where(QUOTA.c.channel == channel, QUOTA.c.hour < hour))
    return []


def _take(dialect: str, channel: str, hour: datetime, limit: int) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE SET used = used + 1 WHERE used < limit RETURNING used``.

    One statement, so concurrent takers queue on the row; no row back means the hour is full.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(QUOTA)
        .values(channel=channel, hour=hour, used=1)
        .on_conflict_do_update(
            index_elements=[QUOTA.c.channel, QUOTA.c.hour],
            set_={"used": QUOTA.c.used + 1},
            where=QUOTA.c.used < limit,
        )
        .returning(QUOTA.c.used)
    )


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
            highlights=read_json(row.highlights, lambda d: tuple((int(s), int(e)) for s, e in d), ()),
        )
        for row in conn.execute(query)
    }


def _alert(row: Any, snippets: dict[tuple[int, str], Snippet], refs: dict[int, StoryRef]) -> Alert:
    """An outbox row as an Alert; a feed-health notice has no article behind it.

    ``claim`` builds its messages after committing the claim, so a JSON column that
    cannot be read comes back empty (``read_json``) rather than failing the claim and
    holding every message in it until the claim expires, again on each retry."""
    rules: tuple[str, ...] = read_json(row.rules, lambda d: tuple(str(r) for r in d), ())
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
        done_targets=read_json(row.done_targets, lambda d: frozenset(int(i) for i in d), frozenset()),
        batched=bool(row.batched),
        story=refs.get(row.story_id) if row.story_id is not None else None,
        kind="update" if row.kind == "update" else "alert",
    )
