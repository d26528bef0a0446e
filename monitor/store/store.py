"""The Store: feed schedule, articles, alerts and the delivery outbox behind one facade.

Every public method is one short transaction. ``save_poll`` writes a poll's new
articles, their matches and their deliveries together, so a crash can never leave an
alert without its outbox row (or the reverse).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, false, func, insert, literal, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from monitor.errors import StorageError
from monitor.identity import digest
from monitor.models import Entry, FeedState, FeedStatus, Match, SavedPoll, StoredArticle
from monitor.store.engine import READ_ONLY, create_schema, make_engine
from monitor.store.outbox import Outbox
from monitor.store.retention import Retention
from monitor.store.tables import ARTICLES, DELIVERIES, FEEDS, MATCHES

_BATCH = 500
_LEASE_SETTLED: dict[str, Any] = {
    "leased_until": None,
    "leased_by": None,
}  # every poll outcome ends the lease


@dataclass(frozen=True, slots=True)
class PollResult:
    """What a successful fetch tells the store about the feed."""

    etag: str | None
    last_modified: str | None
    title: str | None
    body_hash: str | None = None


class Store(Outbox, Retention):
    """Owns the SQLAlchemy engine; nothing outside sees rows or sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Store:
        """Connect and bring the schema to head; ``upgrade=False`` refuses an older one."""
        engine = make_engine(url)
        try:
            create_schema(engine, upgrade=upgrade)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; operational database errors become StorageError."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as e:
            raise StorageError(f"store: {str(e.orig).splitlines()[0]}") from e

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: on SQLite it does not take the write lock."""
        try:
            with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn, conn.begin():
                yield conn
        except OperationalError as e:
            raise StorageError(f"store: {str(e.orig).splitlines()[0]}") from e

    def ping(self) -> None:
        """Raise StorageError unless the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError as e:
            raise StorageError(f"store: database does not answer: {str(e).splitlines()[0]}") from e

    # -- feeds ---------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[tuple[str, str]], now: datetime) -> None:
        """Make the feeds table match the config: (name, url) pairs, matched by url."""
        wanted = dict((url, name) for name, url in feeds)
        with self.transaction() as conn:
            existing = {row.url: row for row in conn.execute(select(FEEDS))}
            for url, name in wanted.items():
                row = existing.get(url)
                if row is None:  # another daemon may insert it at the same moment
                    new = {"url": url, "name": name, "active": True, "created_at": now, "next_poll_at": now}
                    conn.execute(self._ignore_conflicts(FEEDS, ["url"]), [new])
                elif row.name != name or not row.active:
                    conn.execute(update(FEEDS).where(FEEDS.c.id == row.id).values(name=name, active=True))
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
            return [_feed_state(row) for row in conn.execute(query)]

    def claim_feeds(
        self, now: datetime, lease: timedelta, owner: str, limit: int, *, due_only: bool = True
    ) -> list[FeedState]:
        """Lease up to ``limit`` due feeds for this poller (``FOR UPDATE SKIP LOCKED``).

        Several daemons on one PostgreSQL each get different feeds; a lease that is
        never settled (its daemon died) expires and the feed is due again.
        """
        if limit <= 0:
            return []
        due = (
            select(FEEDS.c.id)
            .where(
                FEEDS.c.active.is_(True),
                FEEDS.c.disabled_reason.is_(None),
                or_(
                    FEEDS.c.next_poll_at.is_(None),
                    FEEDS.c.next_poll_at <= now,
                    true() if not due_only else false(),
                ),
                or_(FEEDS.c.leased_until.is_(None), FEEDS.c.leased_until <= now),
            )
            .order_by(FEEDS.c.next_poll_at, FEEDS.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.transaction() as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                update(FEEDS).where(FEEDS.c.id.in_(ids)).values(leased_until=now + lease, leased_by=owner)
            )
            rows = conn.execute(select(FEEDS).where(FEEDS.c.id.in_(ids)).order_by(FEEDS.c.next_poll_at)).all()
        return [_feed_state(row) for row in rows]

    def release_feeds(self, owner: str | None = None) -> int:
        """Drop feed leases (this owner's, or all: only safe with a single daemon)."""
        query = update(FEEDS).where(FEEDS.c.leased_until.is_not(None))
        if owner is not None:
            query = query.where(FEEDS.c.leased_by == owner)
        with self.transaction() as conn:
            return int(conn.execute(query.values(**_LEASE_SETTLED)).rowcount)

    def known_keys(self, feed_id: int, keys: Sequence[str]) -> set[str]:
        """Which of these entry keys the feed already has (one query per batch)."""
        found: set[str] = set()
        with self.reading() as conn:
            for start in range(0, len(keys), _BATCH):
                batch = keys[start : start + _BATCH]
                query = select(ARTICLES.c.key).where(ARTICLES.c.feed_id == feed_id, ARTICLES.c.key.in_(batch))
                found.update(conn.execute(query).scalars())
        return found

    def record_unchanged(self, feed_id: int, now: datetime, next_poll_at: datetime) -> None:
        """A 304 or an identical body: success, nothing new."""
        with self.transaction() as conn:
            conn.execute(_success(feed_id, now, next_poll_at))

    def record_moved(self, feed_id: int, new_url: str) -> None:
        """A permanent redirect: fetch from the new address from now on."""
        with self.transaction() as conn:
            conn.execute(update(FEEDS).where(FEEDS.c.id == feed_id).values(fetch_url=new_url))

    def disable(self, feed_id: int, reason: str, now: datetime) -> None:
        """Stop polling a feed (HTTP 410) until its configured URL changes."""
        with self.transaction() as conn:
            conn.execute(
                update(FEEDS)
                .where(FEEDS.c.id == feed_id)
                .values(
                    disabled_reason=reason,
                    last_poll_at=now,
                    last_error=reason,
                    last_error_at=now,
                    **_LEASE_SETTLED,
                )
            )

    def record_failure(self, feed_id: int, message: str, now: datetime, next_poll_at: datetime) -> int:
        """Record a failed poll on the feed; returns the consecutive failure count."""
        with self.transaction() as conn:
            conn.execute(
                update(FEEDS)
                .where(FEEDS.c.id == feed_id)
                .values(
                    last_poll_at=now,
                    last_error=message,
                    last_error_at=now,
                    error_count=FEEDS.c.error_count + 1,
                    poll_count=FEEDS.c.poll_count + 1,
                    next_poll_at=next_poll_at,
                    **_LEASE_SETTLED,
                )
            )
            count = conn.execute(select(FEEDS.c.error_count).where(FEEDS.c.id == feed_id)).scalar_one()
        return int(count)

    # -- articles, matches, outbox -----------------------------------------

    def save_poll(
        self,
        feed_id: int,
        result: PollResult,
        entries: Sequence[Entry],
        matches: Mapping[str, Sequence[Match]],
        routes: Mapping[str, Sequence[str]],
        now: datetime,
        next_poll_at: datetime,
        hold: Mapping[str, datetime] | None = None,
    ) -> SavedPoll:
        """In ONE transaction: new articles, their matches, their deliveries, feed state.

        ``matches`` maps entry key -> matches; ``routes`` maps rule -> channels;
        ``hold`` maps digest channels to the time their next digest goes out.
        Entries already stored (another poll won the race) are skipped entirely.
        """
        with self.transaction() as conn:
            ids = self._insert_articles(conn, feed_id, entries, now)
            matched = 0
            match_rows, delivery_rows = [], []
            for key, article_id in ids.items():
                found = matches.get(key, ())
                if not found:
                    continue
                matched += 1
                match_rows += [_match_row(article_id, m, now) for m in found]
                delivery_rows += _delivery_rows(feed_id, key, article_id, found, routes, now, hold or {})
            delivery_ids = self._insert_ignore(conn, DELIVERIES, delivery_rows, ["article_id", "channel"])
            self._insert_ignore(conn, MATCHES, match_rows, ["article_id", "rule"])
            values: dict[str, Any] = {
                "etag": result.etag,
                "last_modified": result.last_modified,
                "title": result.title,
                "body_hash": result.body_hash,
            }
            if ids:
                values["last_new_at"] = now
            conn.execute(_success(feed_id, now, next_poll_at).values(**values))
        return SavedPoll(
            new=len(ids), matched=matched, queued=len(delivery_ids), delivery_ids=tuple(delivery_ids)
        )

    def _insert_articles(
        self, conn: Connection, feed_id: int, entries: Sequence[Entry], now: datetime
    ) -> dict[str, int]:
        """Insert, skipping keys that exist; key -> id of the rows actually inserted."""
        rows = [_article_row(feed_id, e, now) for e in entries]
        if not rows:
            return {}
        # One statement with parameter lists: SQLAlchemy caches its compiled form and
        # batches it ("insertmanyvalues"), instead of compiling a new multi-row VALUES.
        stmt = self._ignore_conflicts(ARTICLES, ["feed_id", "key"]).returning(ARTICLES.c.key, ARTICLES.c.id)
        return {key: article_id for key, article_id in conn.execute(stmt, rows)}

    def _insert_ignore(
        self, conn: Connection, table: Table, rows: list[dict[str, Any]], unique: list[str]
    ) -> list[int]:
        """INSERT ... ON CONFLICT DO NOTHING in batches; returns the ids inserted."""
        if not rows:
            return []
        return list(conn.execute(self._ignore_conflicts(table, unique).returning(table.c.id), rows).scalars())

    def _ignore_conflicts(self, table: Table, unique: list[str]) -> sqlite.Insert | postgresql.Insert:
        """``INSERT ... ON CONFLICT (unique) DO NOTHING`` for this backend."""
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=unique)
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=unique)

    def read_articles(
        self, *, since: datetime | None = None, feeds: Collection[str] | None = None, batch: int = _BATCH
    ) -> tuple[int, Iterator[list[StoredArticle]]]:
        """Stored articles as Entry values, for trying rules on them: how many, and the
        articles in batches, oldest first. Each batch is its own short read (keyset on
        id), so nothing stays open between batches.

        ``since``: published (or, when undated, fetched) at or after it; ``feeds``: only
        the feeds with these names.
        """
        when = func.coalesce(ARTICLES.c.published_at, ARTICLES.c.fetched_at)
        query = select(ARTICLES, FEEDS.c.name.label("feed_name")).join(
            FEEDS, FEEDS.c.id == ARTICLES.c.feed_id
        )
        if since is not None:
            query = query.where(when >= since)
        if feeds is not None:
            query = query.where(FEEDS.c.name.in_(list(feeds)))
        with self.transaction() as conn:
            total = int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())

        def batches() -> Iterator[list[StoredArticle]]:
            last = 0
            while True:
                page = query.where(ARTICLES.c.id > last).order_by(ARTICLES.c.id).limit(batch)
                with self.transaction() as conn:
                    rows = conn.execute(page).all()
                if not rows:
                    return
                last = rows[-1].id
                yield [
                    StoredArticle(
                        id=row.id,
                        feed=row.feed_name,
                        entry=Entry(
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
                        ),
                    )
                    for row in rows
                ]

        return total, batches()

    # -- health -------------------------------------------------------------

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
            if notice is not None:
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

    # -- status -------------------------------------------------------------

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


def _feed_state(row: Any) -> FeedState:
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
    )


def _success(feed_id: int, now: datetime, next_poll_at: datetime) -> Any:
    return (
        update(FEEDS)
        .where(FEEDS.c.id == feed_id)
        .values(
            last_poll_at=now,
            last_success_at=now,
            last_error=None,
            error_count=0,
            poll_count=FEEDS.c.poll_count + 1,
            next_poll_at=next_poll_at,
            **_LEASE_SETTLED,
        )
    )


def _nul_free(text: str | None) -> str | None:
    """PostgreSQL refuses NUL in text; feeds sometimes carry it."""
    return text.replace("\x00", "") if text else text


def _article_row(feed_id: int, entry: Entry, now: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "key": _nul_free(entry.key),
        "title": _nul_free(entry.title),
        "link": _nul_free(entry.link),
        "author": _nul_free(entry.author),
        "published_at": entry.published,
        "fetched_at": now,
        "summary_html": _nul_free(entry.summary_html),
        "summary_text": _nul_free(entry.summary_text),
        "content_html": _nul_free(entry.content_html),
        "content_text": _nul_free(entry.content_text),
        "page_text": _nul_free(entry.page_text),
        "page_error": _nul_free(entry.page_error),
    }


def _match_row(article_id: int, match: Match, now: datetime) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "rule": match.rule,
        "field": match.field,
        "terms": json.dumps(list(match.terms)),
        "snippet": match.snippet.text,
        "highlights": json.dumps([list(h) for h in match.snippet.highlights]),
        "created_at": now,
    }


def _delivery_rows(
    feed_id: int,
    key: str,
    article_id: int,
    matches: Sequence[Match],
    routes: Mapping[str, Sequence[str]],
    now: datetime,
    hold: Mapping[str, datetime],
) -> list[dict[str, Any]]:
    """One outbox row per channel, listing the matched rules that notify it."""
    by_channel: dict[str, list[str]] = {}
    for match in matches:
        for channel in routes.get(match.rule, ()):
            by_channel.setdefault(channel, []).append(match.rule)
    return [
        {
            "article_id": article_id,
            "channel": channel,
            "message_key": digest(str(feed_id), key, channel),
            "rules": json.dumps(rules),
            "batched": channel in hold,
            "done_targets": "[]",
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": hold.get(channel, now),
            "created_at": now,
        }
        for channel, rules in by_channel.items()
    ]
