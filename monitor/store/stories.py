"""Stories in the database: the story index on SQL tables, and the assignment step of
the poll's transaction.

``assign`` runs inside ``save_poll``'s transaction, after the articles are inserted: it
puts each newly matched article into a story (``monitor.stories.StoryAssigner`` over
``SqlStoryIndex``) and records the pair. On PostgreSQL it first takes a transaction
advisory lock, so two daemons that ingest two reports of one event at the same moment
assign one after the other and the second finds the first's story: one story, never
two. SQLite's BEGIN IMMEDIATE already serialises the writers.

``alerts`` then says, for each (story, rule), whether it alerts: a rule that folds by
story alerts for the first report of a story it matches, once (``story_alerts`` is
unique on the pair); later reports are recorded on the story.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from monitor.store.json_columns import read_json
from monitor.store.tables import STORIES, STORY_ALERTS, STORY_ARTICLES, STORY_TERMS
from monitor.stories import Explanation, StoryArticle, StoryAssigner, StoryState, TermStats, WordfreqStats
from monitor.stories.codec import dump, load
from monitor.stories.index import MAX_POSTINGS, Query, story_terms

_PG_LOCK = 0x73746F72696573  # "stories": one assignment step at a time per database

# The story step's statements, built once with bound parameters: building a Core
# statement and its cache key for every execution was about a fifth of the step's CPU
# (several statements for each matched article). Executing a shared statement is
# thread-safe; the values come as parameters.
_STORY_BY_KEY = select(STORIES.c.id, STORIES.c.state).where(STORIES.c.key == bindparam("story_key"))
_STORIES_BY_ID = select(STORIES.c.id, STORIES.c.state).where(
    STORIES.c.id.in_(bindparam("row_ids", expanding=True))
)
_INSERT_STORY = insert(STORIES).returning(STORIES.c.id)
_UPDATE_STORY = update(STORIES).where(STORIES.c.id == bindparam("row_id"))  # SET: the other parameters
_INSERT_STORY_ARTICLE = insert(STORY_ARTICLES)


@dataclass(frozen=True)
class StoryPlan:
    """What the poll asks of the story step: the matched entries to assign (entry key ->
    what assignment reads) and which rules fold by story (the others alert per article)."""

    articles: Mapping[str, StoryArticle]
    folds: frozenset[str]
    updates: Mapping[str, str] = field(default_factory=dict)  # channel -> none | digest | thread
    window: timedelta = timedelta(days=7)
    stats: TermStats = field(default_factory=WordfreqStats)


class DecodedStories:
    """Decoded story states by row id, each with the exact text it was decoded from.

    Reading a candidate story means reading its row's JSON state (a few KB) and
    decoding it, which was a third of the story step's time: a row whose text is
    unchanged since it was last seen is not decoded again. Keyed by the text itself, a
    hit is always right (another daemon's update, or a rolled-back write of ours,
    changes the text and misses). Bounded (``size`` stories, least recently used go
    first) and shared by the store's threads. A decoded story with its text holds about
    21 KB (measured on the 2,048 largest of a 20,000-article index: 43 MiB), so the
    default keeps 512 (about 11 MB); a decode it saves costs about 140 us.
    """

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[str, StoryState]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def decode(self, row_id: int, state: str) -> StoryState | None:
        """The story in ``state`` (None: another layout, closed for new reports)."""
        with self._lock:
            hit = self._items.get(row_id)
            if hit is not None and hit[0] == state:
                self._items.move_to_end(row_id)
                return hit[1]
        story = _read_state(state)
        if story is not None:
            self.keep(row_id, state, story)
        return story

    def keep(self, row_id: int, state: str, story: StoryState) -> None:
        """Remember that ``state`` decodes to ``story`` (a write of ours)."""
        with self._lock:
            self._items[row_id] = (state, story)
            self._items.move_to_end(row_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def _read_state(state: str | None) -> StoryState | None:
    """A row's story, or None for a row that cannot be read (damaged, edited by hand,
    another layout): that story is closed for new reports, and the article that would
    have met it joins another or starts its own; the poll goes on."""
    return read_json(state, lambda data: load(data) if isinstance(data, dict) else None, None)


class SqlStoryIndex:
    """``monitor.stories.StoryIndex`` over the story tables, on one connection.

    Stories read in this transaction are kept by key, so the assigner sees its own
    writes; ``ids`` maps a story's key to its row id. ``decoded`` (the store's, shared
    across transactions) spares decoding rows whose state has not changed.
    """

    def __init__(self, conn: Connection, now: datetime, decoded: DecodedStories | None = None) -> None:
        self._conn = conn
        self._now = now
        self._decoded = decoded if decoded is not None else DecodedStories(size=0)
        self._cache: dict[str, StoryState] = {}
        self.ids: dict[str, int] = {}

    def __len__(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(STORIES)).scalar_one())

    def candidates(self, query: Query, limit: int) -> list[StoryState]:
        """The stories sharing most query weight; each term's newest MAX_POSTINGS postings."""
        weights = dict(query)
        if not weights:
            return []
        found: dict[int, float] = {}
        for term, story_id in self._conn.execute(_newest_postings(len(weights)), _terms(weights)).all():
            found[story_id] = found.get(story_id, 0.0) + weights[term]
        best = heapq.nsmallest(limit, [(-weight, story_id) for story_id, weight in found.items()])
        return [story for story in self._load([sid for _, sid in best]) if story is not None]

    def get(self, story_id: str) -> StoryState | None:
        if story_id in self._cache:
            return self._cache[story_id]
        row = self._conn.execute(_STORY_BY_KEY, {"story_key": story_id}).first()
        return None if row is None else self._remember(row.id, row.state)

    def put(self, story: StoryState) -> None:
        """Insert or update the story's row; post its terms as of now (``_post``)."""
        state = json.dumps(dump(story), ensure_ascii=False)
        values = {
            "first_seen": story.first_seen,
            "last_seen": story.last_seen,
            "articles": story.articles,
            "lang": story.lang,
            "state": state,
        }
        row_id = self.ids.get(story.id)
        if row_id is None:
            row_id = self._conn.execute(
                _INSERT_STORY, {"key": story.id, "created_at": self._now, **values}
            ).scalar_one()
            self.ids[story.id] = row_id
        else:
            self._conn.execute(_UPDATE_STORY, {"row_id": row_id, **values})
        self._cache[story.id] = story
        self._decoded.keep(row_id, state, story)
        self._post(row_id, story)

    def expire(self, before: datetime) -> int:
        """Take closed stories (latest report before ``before``) out of the index."""
        closed = select(STORIES.c.id).where(STORIES.c.last_seen < before)
        return int(self._conn.execute(delete(STORY_TERMS).where(STORY_TERMS.c.story_id.in_(closed))).rowcount)

    def _post(self, row_id: int, story: StoryState) -> None:
        """Post the story's index terms as of now, moving older postings of them up: a
        term's candidates are its newest MAX_POSTINGS postings, and a story that keeps
        getting reports must not fall out of a common term's list because other stories
        posted it since (the memory index posts such a term again as well). A new story
        has no postings yet, so the same statement inserts them."""
        rows = [{"term": t, "story_id": row_id, "posted_at": self._now} for t in sorted(story_terms(story))]
        if rows:
            self._conn.execute(_repost(self._conn.dialect.name), rows)

    def _load(self, row_ids: Sequence[int]) -> list[StoryState | None]:
        known = {v: k for k, v in self.ids.items()}
        wanted = [i for i in row_ids if i not in known]
        if wanted:
            for row in self._conn.execute(_STORIES_BY_ID, {"row_ids": wanted}).all():
                self._remember(row.id, row.state)
            known = {v: k for k, v in self.ids.items()}
        return [self._cache.get(known[i]) if i in known else None for i in row_ids]

    def _remember(self, row_id: int, state: str) -> StoryState | None:
        story = self._decoded.decode(row_id, state)
        if story is None:  # another layout: closed for new reports
            return None
        self.ids[story.id] = row_id
        self._cache[story.id] = story
        return story


@cache
def _newest_postings(terms: int) -> CompoundSelect[str, int]:
    """Each of ``terms`` terms' newest MAX_POSTINGS postings: one ``LIMIT`` per term on
    the (term, posted_at) index, so the work per query is bounded however many stories
    have posted a common term (``2``, ``Ukraine``) within the window; a window function
    over all their postings grew with the index. Bound as ``t0``, ``t1``, ...; built
    once per number of terms (the caller's query has at most a few dozen)."""
    parts = [
        select(STORY_TERMS.c.term, STORY_TERMS.c.story_id)
        .where(STORY_TERMS.c.term == bindparam(f"t{i}"))
        .order_by(STORY_TERMS.c.posted_at.desc())
        .limit(MAX_POSTINGS)
        .subquery()
        for i in range(terms)
    ]
    return union_all(*(select(part.c.term, part.c.story_id) for part in parts))


def _terms(weights: Mapping[str, float]) -> dict[str, str]:
    return {f"t{i}": term for i, term in enumerate(weights)}


def assign(
    conn: Connection,
    plan: StoryPlan,
    inserted: Mapping[str, int],
    now: datetime,
    decoded: DecodedStories | None = None,
) -> dict[str, int]:
    """Put every newly inserted, matched article into a story; entry key -> story row id."""
    wanted = [(key, inserted[key]) for key in plan.articles if key in inserted]
    if not wanted:
        return {}
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    index = SqlStoryIndex(conn, now, decoded)
    assigner = StoryAssigner(index, plan.stats, window=plan.window)
    stories: dict[str, int] = {}
    for key, article_id in assignment_order(plan, dict(wanted)):
        article = plan.articles[key]
        done = assigner.assign(_keyed(article, _unused_key(conn, article_id)))
        story_id = index.ids[done.story.id]
        conn.execute(
            _INSERT_STORY_ARTICLE,
            {
                "article_id": article_id,
                "story_id": story_id,
                "score": done.explanation.score,
                "explanation": json.dumps(_explained(done.explanation, done.created), ensure_ascii=False),
                "created_at": now,
            },
        )
        if done.created:
            conn.execute(_UPDATE_STORY, {"row_id": story_id, "first_article_id": article_id})
        stories[key] = story_id
    return stories


def assignment_order(plan: StoryPlan | None, ids: Mapping[str, int]) -> list[tuple[str, int]]:
    """(entry key, article id) in the order the story step assigns them: publication
    time, undated last, then article id (articles the plan has no story for last)."""
    if plan is None:
        return list(ids.items())

    def order(item: tuple[str, int]) -> tuple[bool, bool, datetime | None, int]:
        article = plan.articles.get(item[0])
        if article is None:
            return (True, True, None, item[1])
        return (False, *_published(article), item[1])

    return sorted(ids.items(), key=order)


def new_alerts(
    conn: Connection, story_id: int, article_id: int, rules: Iterable[str], now: datetime
) -> set[str]:
    """Of these folding rules, the ones for which (story, rule) is new: they alert now."""
    fresh = set()
    for rule in rules:
        row = {"story_id": story_id, "rule": rule, "article_id": article_id, "created_at": now}
        claim = _insert_ignore(conn.dialect.name, STORY_ALERTS, ("story_id", "rule"), returning_id=True)
        inserted = conn.execute(claim, [row])
        if inserted.first() is not None:
            fresh.add(rule)
    return fresh


@cache
def _insert_ignore(dialect: str, table: Table, unique: tuple[str, ...], returning_id: bool = False) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the dialect, built once (see _STORY_BY_KEY)."""
    insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_for(table).on_conflict_do_nothing(index_elements=list(unique))
    return statement.returning(table.c.id) if returning_id else statement


def _unused_key(conn: Connection, article_id: int) -> str:
    """``a<article id>``, a key no story has taken: entry keys are unique per feed only,
    and SQLite gives a pruned article's id to the next one (its ids come from the
    largest one left), while the pruned article's story stays; such a key gets the
    first free ``.<n>`` (``a12.1``), each looked up on the unique index of ``key``. (A
    story the alerts retention deleted frees its key with its row.)"""
    base = key = f"a{article_id}"
    for n in itertools.count(1):
        if conn.execute(_KEY_TAKEN, {"key": key}).first() is None:
            break
        key = f"{base}.{n}"
    return key


_KEY_TAKEN = select(STORIES.c.id).where(STORIES.c.key == bindparam("key"))


@cache
def _repost(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (term, story_id) DO UPDATE SET posted_at``, built once."""
    insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_for(STORY_TERMS)
    return statement.on_conflict_do_update(
        index_elements=["term", "story_id"], set_={"posted_at": statement.excluded.posted_at}
    )


def _keyed(article: StoryArticle, key: str) -> StoryArticle:
    """The article under a key unique in the database (``_unused_key``)."""
    return StoryArticle(
        key=key,
        title=article.title,
        text=article.text,
        published=article.published,
        outlet=article.outlet,
        lang=article.lang,
    )


def _published(article: StoryArticle) -> tuple[bool, datetime | None]:
    """Publication order, undated last (then by article id)."""
    return (article.published is None, article.published)


def _explained(why: Explanation, created: bool) -> dict[str, Any]:
    """The assigner's explanation as JSON: why the article joined, or started, its story."""
    return {
        "created": created,
        "score": why.score,
        "candidate": why.candidate,
        "shared_names": list(why.shared_names),
        "shared_words": list(why.shared_words),
        "shared_numbers": list(why.shared_numbers),
        "conflicting_names": list(why.conflicting_names),
        "missing_names": list(why.missing_names),
        "conflicting_years": list(why.conflicting_years),
    }
