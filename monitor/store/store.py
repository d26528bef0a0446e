"""The Store: feed schedule, articles, alerts and the delivery outbox behind one facade.

Every public method is one short transaction. ``save_poll`` writes a poll's new
articles, their matches and their deliveries together, so a crash can never leave an
alert without its outbox row (or the reverse).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StorageError
from monitor.identity import alias_key
from monitor.models import Entry, Match, SavedPoll, StoredArticle
from monitor.store.about_queue import AboutClaim, AboutQueue, Queued, entry_of, held_ids, ours, queue_rows
from monitor.store.alerts import Routing, alert_rows, match_row, update_rows
from monitor.store.engine import STORE_REFUSALS, create_schema, make_engine, writer_gate
from monitor.store.migrate import READ_ONLY
from monitor.store.outbox import Outbox
from monitor.store.retention import Retention
from monitor.store.schedule import FeedSchedule, claim_held, success_values
from monitor.store.stories import (
    DecodedStories,
    SqlStoryIndex,
    StoryPlan,
    assign,
    assignment_order,
    new_alerts,
)
from monitor.store.story_reads import StoryReads
from monitor.store.tables import ABOUT_QUEUE, ARTICLES, DELIVERIES, EMBEDDINGS, FEEDS, MATCHES, STORY_ARTICLES

_BATCH = 500
_SURROGATES = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class PollResult:
    """What a successful fetch tells the store about the feed."""

    etag: str | None
    last_modified: str | None
    title: str | None
    body_hash: str | None = None
    warning: str | None = None  # what the poll had to leave out, and why
    items: str | None = None  # the document's stored items (``items.Record``), for item skipping


class Store(FeedSchedule, Outbox, Retention, StoryReads, AboutQueue):
    """Owns the SQLAlchemy engine; nothing outside sees rows or sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writers = writer_gate(engine)  # in-process writers take turns (SQLite)
        self.decoded_stories = DecodedStories()  # story rows decoded, for the story step

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
        """One transaction; a database that refuses or fails it (``STORE_REFUSALS``)
        raises StorageError."""
        try:
            with self._writers, self.engine.begin() as conn:
                yield conn
        except STORE_REFUSALS as e:
            raise StorageError(f"store: {str(e.orig).splitlines()[0]}") from e

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: on SQLite it does not take the write lock."""
        try:
            with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn, conn.begin():
                yield conn
        except STORE_REFUSALS as e:
            raise StorageError(f"store: {str(e.orig).splitlines()[0]}") from e

    def ping(self) -> None:
        """Raise StorageError unless the database answers a trivial query (never waits for writers)."""
        try:
            with self.reading() as conn:
                conn.execute(select(1))
        except (SQLAlchemyError, StorageError) as e:
            raise StorageError(f"store: database does not answer: {str(e).splitlines()[0]}") from e

    # -- articles, matches, outbox -----------------------------------------

    def expire_stories(self, before: datetime) -> int:
        """Take the stories with no report since ``before`` out of the story index."""
        with self.transaction() as conn:
            return SqlStoryIndex(conn, before).expire(before)

    def known_keys(self, feed_id: int, keys: Sequence[str]) -> set[str]:
        """Which of these entry keys the feed already has (one query per batch)."""
        found: set[str] = set()
        with self.reading() as conn:
            for start in range(0, len(keys), _BATCH):
                batch = [_clean(k) for k in keys[start : start + _BATCH]]
                query = select(ARTICLES.c.key).where(ARTICLES.c.feed_id == feed_id, ARTICLES.c.key.in_(batch))
                found.update(k for k in conn.execute(query).scalars() if k is not None)
        return found

    def seen(self, feed_id: int, entries: Sequence[Entry]) -> set[str]:
        """Keys of the entries the feed already has: by key, or by alias (normalised link
        and title) for publishers that give an entry a new guid on every poll."""
        by_key = {_clean(e.key): e.key for e in entries}
        by_alias: dict[str, list[str]] = {}
        for e in entries:
            alias = _alias(e)
            if alias is not None:
                by_alias.setdefault(alias, []).append(e.key)
        found: set[str] = set()
        with self.reading() as conn:
            for start in range(0, max(len(by_key), len(by_alias)), _BATCH):
                keys = list(by_key)[start : start + _BATCH]
                aliases = list(by_alias)[start : start + _BATCH]
                query = select(ARTICLES.c.key, ARTICLES.c.alias_key).where(
                    ARTICLES.c.feed_id == feed_id,
                    or_(ARTICLES.c.key.in_(keys), ARTICLES.c.alias_key.in_(aliases)),
                )
                for key, alias in conn.execute(query):
                    if key in by_key:
                        found.add(by_key[key])
                    found.update(by_alias.get(alias, ()))
        return found

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
        *,
        lease: str | None = None,
        stories: StoryPlan | None = None,
        about: Collection[str] = (),
    ) -> SavedPoll:
        """In ONE transaction: new articles, their stories, matches and deliveries, feed state.

        ``matches`` maps entry key -> matches; ``routes`` maps rule -> channels;
        ``hold`` maps digest channels to the time their next digest goes out.
        Entries already stored (another poll won the race) are skipped entirely.
        ``lease``: the poll's claim; LeaseLost (and nothing written) if it passed on.
        ``stories``: the matched entries to fold into stories, and the rules that fold
        (``monitor.store.alerts``); without it every match alerts per article.
        ``about``: keys of the entries some ``about`` rule may still match: queued for
        the about job (``monitor.store.about_queue``), in this same transaction.
        """
        routing = Routing(routes, hold or {}, stories.updates if stories else {})
        with self.transaction() as conn:
            claim_held(conn, feed_id, lease)
            ids = self._insert_articles(conn, feed_id, entries, now)
            queue_rows(conn, [ids[key] for key in about if key in ids], now)
            story_of = assign(conn, stories, ids, now, self.decoded_stories) if stories is not None else {}
            matched, delivery_ids = self._record(conn, feed_id, ids, matches, stories, routing, story_of, now)
            conn.execute(
                update(FEEDS)
                .where(FEEDS.c.id == feed_id)
                .values(**_feed_values(result, ids, now, next_poll_at))
            )
        return SavedPoll(
            new=len(ids), matched=matched, queued=len(delivery_ids), delivery_ids=tuple(delivery_ids)
        )

    def save_about(
        self,
        claim: AboutClaim,
        matches: Mapping[int, Sequence[Match]],
        routes: Mapping[str, Sequence[str]],
        now: datetime,
        hold: Mapping[str, datetime] | None = None,
        *,
        stories: Mapping[int, StoryPlan] | None = None,
        embeddings: Mapping[str, bytes] | None = None,
        settle: Collection[int] | None = None,
    ) -> SavedPoll:
        """In ONE transaction: what the about job made of a claim: the matches (article id
        -> matches), their stories (feed id -> plan) and deliveries, the vectors, and the
        queue rows settled (``settle``: these ids; None: every item of the claim).

        Rows whose claim passed to another owner (it expired) are left to that owner: their
        matches are not written here. An article that has a story already (a word rule
        matched it in its poll) keeps it; the others are assigned now.
        """
        plans = stories or {}
        updates_of = next(iter(plans.values())).updates if plans else {}
        routing = Routing(routes, hold or {}, updates_of)
        done = [i.article_id for i in claim.items] if settle is None else list(settle)
        with self.transaction() as conn:
            held = held_ids(conn, claim.token, [i.article_id for i in claim.items])
            matched, delivery_ids = 0, []
            by_feed: dict[int, list[Queued]] = {}
            for item in claim.items:
                if item.article_id in held and matches.get(item.article_id):
                    by_feed.setdefault(item.feed_id, []).append(item)
            for feed_id, items in by_feed.items():
                ids = {item.entry.key: item.article_id for item in items}
                found = {item.entry.key: matches[item.article_id] for item in items}
                plan = plans.get(feed_id)
                story_of = self._stories_of(conn, plan, ids, now) if plan is not None else {}
                counted, made = self._record(conn, feed_id, ids, found, plan, routing, story_of, now)
                matched += counted
                delivery_ids += made
            if embeddings:
                self._put_embeddings(conn, embeddings, now)
            settled = [i for i in done if i in held]
            if settled:
                conn.execute(delete(ABOUT_QUEUE).where(*ours(claim.token, settled)))
        return SavedPoll(new=0, matched=matched, queued=len(delivery_ids), delivery_ids=tuple(delivery_ids))

    def _stories_of(
        self, conn: Connection, plan: StoryPlan, ids: Mapping[str, int], now: datetime
    ) -> dict[str, int]:
        """Entry key -> story: the story an article has, else a new assignment."""
        query = select(STORY_ARTICLES.c.article_id, STORY_ARTICLES.c.story_id).where(
            STORY_ARTICLES.c.article_id.in_(list(ids.values()))
        )
        existing = {int(a): int(s) for a, s in conn.execute(query)}
        unassigned = {key: i for key, i in ids.items() if i not in existing}
        story_of = {key: existing[i] for key, i in ids.items() if i in existing}
        story_of.update(assign(conn, plan, unassigned, now, self.decoded_stories))
        return story_of

    def _record(
        self,
        conn: Connection,
        feed_id: int,
        ids: Mapping[str, int],
        matches: Mapping[str, Sequence[Match]],
        stories: StoryPlan | None,
        routing: Routing,
        story_of: Mapping[str, int],
        now: datetime,
    ) -> tuple[int, list[int]]:
        """The matches of these articles (key -> id) and their deliveries: alerts, or
        story updates for rules that alerted on the story already. (matched, delivery ids).

        Articles go in the order the story step assigned them (``assignment_order``:
        publication, then id), so a story's alert names its first report, not a newer one
        the feed listed first; and a report of a story that alerts in this same poll sends
        no update: its alert is still to go out, and would have used the hour's update."""
        matched, match_rows, alert_rows_, updates = 0, [], [], []
        alerted_here: set[int] = set()
        for key, article_id in assignment_order(stories, ids):
            found = matches.get(key, ())
            if not found:
                continue
            matched += 1
            match_rows += [match_row(article_id, m, now) for m in found]
            story = story_of.get(key)
            alerting, later = self._alerting(conn, stories, story, article_id, found, now)
            rows = alert_rows(feed_id, key, article_id, alerting, routing, now, story)
            alert_rows_ += rows
            if alerting and story is not None:
                alerted_here.add(story)
            if later and story is not None and story not in alerted_here:
                alerted = {r["channel"] for r in rows}
                updates += update_rows(feed_id, key, article_id, later, routing, now, story, alerted)
        delivery_ids = self._insert_ignore(conn, DELIVERIES, alert_rows_, ["article_id", "channel"])
        delivery_ids += self._insert_ignore(conn, DELIVERIES, updates, None)
        self._insert_ignore(conn, MATCHES, match_rows, ["article_id", "rule"])
        return matched, delivery_ids

    @staticmethod
    def _alerting(
        conn: Connection,
        stories: StoryPlan | None,
        story_id: int | None,
        article_id: int,
        found: Sequence[Match],
        now: datetime,
    ) -> tuple[list[str], list[str]]:
        """The rules this article alerts for, and those it only reports for (already alerted)."""
        rules = list(dict.fromkeys(m.rule for m in found))
        if stories is None or story_id is None:
            return rules, []
        folding = [r for r in rules if r in stories.folds]
        fresh = new_alerts(conn, story_id, article_id, folding, now)
        return [r for r in rules if r not in stories.folds or r in fresh], [
            r for r in folding if r not in fresh
        ]

    def embeddings(self, keys: Collection[str]) -> dict[str, bytes]:
        """The cached embeddings among these content keys (``about`` rules)."""
        found: dict[str, bytes] = {}
        wanted = list(dict.fromkeys(keys))
        with self.reading() as conn:
            for start in range(0, len(wanted), _BATCH):
                query = select(EMBEDDINGS.c.key, EMBEDDINGS.c.vector).where(
                    EMBEDDINGS.c.key.in_(wanted[start : start + _BATCH])
                )
                found.update((key, bytes(vector)) for key, vector in conn.execute(query))
        return found

    def save_embeddings(self, vectors: Mapping[str, bytes], now: datetime) -> None:
        """Cache embeddings (content key -> bytes); a key already there takes the new bytes."""
        if vectors:
            with self.transaction() as conn:
                self._put_embeddings(conn, vectors, now)

    def _put_embeddings(self, conn: Connection, vectors: Mapping[str, bytes], now: datetime) -> None:
        rows = [{"key": key, "vector": blob, "created_at": now} for key, blob in sorted(vectors.items())]
        insert = postgresql.insert(EMBEDDINGS) if self.dialect == "postgresql" else sqlite.insert(EMBEDDINGS)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["key"],
                set_={"vector": insert.excluded.vector, "created_at": insert.excluded.created_at},
            ),
            rows,
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
        self, conn: Connection, table: Table, rows: list[dict[str, Any]], unique: list[str] | None
    ) -> list[int]:
        """INSERT ... ON CONFLICT DO NOTHING (on ``unique``, or any constraint when None);
        returns the ids inserted."""
        if not rows:
            return []
        return list(conn.execute(self._ignore_conflicts(table, unique).returning(table.c.id), rows).scalars())

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
                yield [StoredArticle(id=row.id, feed=row.feed_name, entry=entry_of(row)) for row in rows]

        return total, batches()


def _clean(text: str | None) -> str | None:
    """Text any database and driver accept: no NUL (PostgreSQL refuses it), no lone
    surrogate (no UTF-8 encoder takes one). Parsing removes both; this is the last guard."""
    if not text:
        return text
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text if text.isascii() else _SURROGATES.sub("\ufffd", text)


def _alias(entry: Entry) -> str | None:
    """The entry's alias key: as the parser computed it, else computed now."""
    return entry.alias or alias_key(entry.link, entry.title)


def _article_row(feed_id: int, entry: Entry, now: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "key": _clean(entry.key),
        "alias_key": _alias(entry),
        "title": _clean(entry.title),
        "link": _clean(entry.link),
        "author": _clean(entry.author),
        "published_at": entry.published,
        "fetched_at": now,
        "summary_html": _clean(entry.summary_html),
        "summary_text": _clean(entry.summary_text),
        "content_html": _clean(entry.content_html),
        "content_text": _clean(entry.content_text),
        "page_text": _clean(entry.page_text),
        "page_error": _clean(entry.page_error),
    }


def _feed_values(
    result: PollResult, inserted: Mapping[str, int], now: datetime, next_poll_at: datetime
) -> dict[str, Any]:
    """The feed row after a successful poll: validators, title, schedule, warning."""
    values: dict[str, Any] = {
        "etag": result.etag,
        "last_modified": result.last_modified,
        "title": result.title,
        "body_hash": result.body_hash,
        "item_hashes": result.items,
        **success_values(now, next_poll_at),
    }
    if inserted:
        values["last_new_at"] = now
    if result.warning:
        values.update(last_warning=_clean(result.warning), last_warning_at=now)
    return values
