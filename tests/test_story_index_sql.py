"""The store's story index (SQL tables, decoded-state cache, incremental postings) puts
real articles into the same stories as the in-memory index the method is measured on.

``bench stories`` measures the method on ``MemoryIndex``; the daemon runs it on
``SqlStoryIndex`` inside each poll's transaction. Replayed in one order through both,
a sample of ECB+ topics (each two real events of one kind) must end in the same groups.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any

import pytest
from sqlalchemy import select, update

from monitor.folding import story_article
from monitor.models import Entry, Match, Snippet
from monitor.store import PollResult, Store
from monitor.store.stories import DecodedStories, SqlStoryIndex, StoryPlan
from monitor.store.tables import ARTICLES, STORIES, STORY_ARTICLES, STORY_TERMS
from monitor.stories import MemoryIndex, StoryAssigner, WordfreqStats
from monitor.stories.codec import dump, load
from monitor.stories.index import MAX_POSTINGS, story_terms
from monitor.stories.state import StoryState
from tests.corpora import corpus

STATS = WordfreqStats()
NOW = datetime(2024, 6, 1, tzinfo=UTC)
TOPICS = {"t03", "t07", "t13", "t27"}  # dev topics whose siblings share people, place and words


@cache
def _articles() -> list[dict[str, Any]]:
    with gzip.open(corpus("stories") / "articles.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if r["topic"] in TOPICS]


def _entries() -> list[Entry]:
    return [
        Entry(
            key=f"a{i}",
            title=r["title"] or "",
            link=f"https://outlet.example/{i}",
            author=None,
            published=NOW + timedelta(minutes=i),
            summary_html="",
            summary_text=r["body"] or "",
            content_html="",
            content_text="",
        )
        for i, r in enumerate(_articles())
    ]


def _groups(pairs: list[tuple[str, object]]) -> set[frozenset[str]]:
    found: dict[object, set[str]] = defaultdict(set)
    for key, story in pairs:
        found[story].add(key)
    return {frozenset(keys) for keys in found.values()}


def test_the_sql_index_groups_corpus_articles_as_the_memory_index_does(any_db_url: str) -> None:
    entries = _entries()
    assert len(entries) > 60
    memory = StoryAssigner(MemoryIndex(), STATS)
    expected = _groups([(e.key, memory.assign(story_article(e, "outlet", "en")).story.id) for e in entries])
    store = Store.open(any_db_url)
    try:
        store.sync_feeds([("outlet", "https://outlet.example/feed")], NOW)
        [feed] = store.feeds()
        for start in range(0, len(entries), 3):  # a few articles per poll, as feeds bring them
            batch = entries[start : start + 3]
            matched = {e.key: [Match("r", "title", ("x",), Snippet(e.title[:40]))] for e in batch}
            plan = StoryPlan(
                {e.key: story_article(e, "outlet", "en") for e in batch}, frozenset({"r"}), stats=STATS
            )
            store.save_poll(
                feed.id, PollResult(None, None, None), batch, matched, {"r": ["c"]}, NOW, NOW, stories=plan
            )
        with store.engine.connect() as conn:
            assigned = conn.execute(
                select(ARTICLES.c.key, STORY_ARTICLES.c.story_id).join(
                    ARTICLES, ARTICLES.c.id == STORY_ARTICLES.c.article_id
                )
            ).all()
            states = conn.execute(select(STORIES.c.id, STORIES.c.state)).all()
            posted = {(s, t) for s, t in conn.execute(select(STORY_TERMS.c.story_id, STORY_TERMS.c.term))}
        assert len(assigned) == len(entries)
        assert _groups([(key, story) for key, story in assigned]) == expected
        for story_id, state in states:  # every term of each story's state is posted for it
            story = load(json.loads(state))
            assert story is not None
            assert {(story_id, t) for t in story_terms(story)} <= posted
    finally:
        store.close()


def test_decoded_stories_reuse_only_the_very_same_text_and_stay_bounded() -> None:
    memory = StoryAssigner(MemoryIndex(), STATS)
    one, two = (memory.assign(story_article(e, "outlet", "en")).story for e in _entries()[:2])
    text_one, text_two = (json.dumps(dump(s), ensure_ascii=False) for s in (one, two))
    decoded = DecodedStories(size=2)
    first = decoded.decode(1, text_one)
    assert first == one and decoded.decode(1, text_one) is first  # the same text: not decoded again
    changed = decoded.decode(1, text_two)  # another daemon updated row 1: its new text wins
    assert changed == two and changed is not first
    decoded.keep(2, text_one, one)
    decoded.keep(3, text_two, two)
    assert len(decoded) == 2 and decoded.decode(1, text_two) is not changed  # row 1 was dropped first
    assert decoded.decode(9, json.dumps({"layout": "unknown"})) is None  # another layout: closed


@pytest.mark.parametrize(
    "damage",
    ['{"v": 1, "id": ', "[1, 2]", "[" * 100_000 + "]" * 100_000, '"a string"', '{"v": 1}'],
    ids=["cut-off", "a-list", "nested-100k", "a-string", "fields-missing"],
)
def test_a_story_row_that_cannot_be_read_closes_that_story_and_the_poll_goes_on(
    any_db_url: str, damage: str
) -> None:
    """A damaged or hand-edited state: the next report of that event starts its own
    story instead of failing its feed's poll on every try."""
    first, again = _entries()[0], replace(_entries()[0], key="again", link="https://outlet.example/again")
    store = Store.open(any_db_url)
    try:
        store.sync_feeds([("outlet", "https://outlet.example/feed")], NOW)
        [feed] = store.feeds()

        def poll(entry: Entry) -> None:
            matched = {entry.key: [Match("r", "title", ("x",), Snippet(entry.title[:40]))]}
            plan = StoryPlan({entry.key: story_article(entry, "outlet", "en")}, frozenset({"r"}), stats=STATS)
            store.save_poll(
                feed.id, PollResult(None, None, None), [entry], matched, {"r": ["c"]}, NOW, NOW, stories=plan
            )

        poll(first)
        with store.engine.begin() as conn:
            conn.execute(update(STORIES).values(state=damage))
        poll(again)  # the same text: it would join, but the story cannot be read
        with store.engine.connect() as conn:
            stories = dict(
                conn.execute(
                    select(ARTICLES.c.key, STORY_ARTICLES.c.story_id).join(
                        ARTICLES, ARTICLES.c.id == STORY_ARTICLES.c.article_id
                    )
                ).all()
            )
        assert set(stories) == {first.key, "again"} and stories[first.key] != stories["again"]
    finally:
        store.close()


def _story(key: str, words: tuple[tuple[str, float], ...], at: datetime) -> StoryState:
    return StoryState(
        id=key,
        first_article=key,
        first_seen=at,
        last_seen=at,
        articles=1,
        lang="en",
        words=words,
        names=(),
        numbers=(),
        name_counts=(),
        lead_counts=(),
    )


def test_a_story_that_keeps_getting_reports_stays_a_candidate_for_its_common_terms(any_store: Store) -> None:
    """A term's candidates are its newest MAX_POSTINGS postings. The store posted only
    the terms a story's previous state lacked, so once more than that many stories had
    posted a common term (``ukraine``) after it, an active story could never be found by
    that term again, however many reports it got; the memory index posts the term again
    on the story's next update, and so does the store now."""
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    decoded = DecodedStories()
    memory = MemoryIndex()

    def step(now: datetime, act: Callable[[SqlStoryIndex], Any]) -> Any:
        with any_store.transaction() as conn:
            return act(SqlStoryIndex(conn, now, decoded))

    active = _story("a-active", (("ukraine", 0.8), ("zaporizhzhia", 0.6)), start)
    memory.put(active)
    step(start, lambda index: index.put(active))
    for n in range(MAX_POSTINGS + 8):  # stories that post the common term after it
        other = _story(f"o{n:02d}", (("ukraine", 0.8), (f"other{n}", 0.6)), start + timedelta(minutes=n + 1))
        memory.put(other)
        step(other.last_seen or start, partial(SqlStoryIndex.put, story=other))
    later = start + timedelta(hours=2)

    def report(index: SqlStoryIndex | MemoryIndex) -> None:  # found by its rare term, updated
        [found] = [s for s in index.candidates([("w:zaporizhzhia", 1.0)], 16) if s.id == "a-active"]
        index.put(replace(found, articles=found.articles + 1, last_seen=later))

    report(memory)
    step(later, report)
    common = [("w:ukraine", 1.0)]
    assert "a-active" in [s.id for s in memory.candidates(common, 100)]
    assert step(later, lambda index: "a-active" in [s.id for s in index.candidates(common, 100)])
