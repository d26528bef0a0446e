"""Where candidate stories come from: an inverted index, never a scan of all stories.

Each story posts its strongest terms (names, words, numbers; a prefix per channel:
``n:tara reid``, ``w:rehab``, ``d:5.6``); an article looks up its own strongest
terms and gets back at most ``limit`` stories, ranked by the summed weight of the
terms they share. A posting list keeps only the ``MAX_POSTINGS`` stories that posted
the term last, so a common term costs as little as a rare one. The state is plain
data (stories by id; term -> story ids), which maps one to one onto two SQL tables
(ADR 0014).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from monitor.stories.features import Signature
from monitor.stories.state import StoryState

MAX_POSTINGS = 32
POSTED_NAMES, POSTED_WORDS, POSTED_NUMBERS = 12, 12, 4
QUERY_NAMES, QUERY_WORDS, QUERY_NUMBERS = 8, 8, 4
Query = Sequence[tuple[str, float]]


class StoryIndex(Protocol):
    """Recent stories and their postings (in memory here; SQL tables in the store)."""

    def candidates(self, query: Query, limit: int) -> list[StoryState]: ...

    def get(self, story_id: str) -> StoryState | None: ...

    def put(self, story: StoryState) -> None: ...

    def expire(self, before: datetime) -> int: ...

    def __len__(self) -> int: ...


def story_terms(story: StoryState) -> frozenset[str]:
    """The terms a story is found by."""
    return frozenset(
        [f"n:{t}" for t, _ in story.names[:POSTED_NAMES]]
        + [f"w:{t}" for t, _ in story.words[:POSTED_WORDS]]
        + [f"d:{t}" for t, _ in story.numbers[:POSTED_NUMBERS]]
    )


def query_terms(sig: Signature) -> list[tuple[str, float]]:
    """The terms an article looks stories up by, with their weights."""
    return (
        [(f"n:{t}", w) for t, w in sig.names[:QUERY_NAMES]]
        + [(f"w:{t}", w) for t, w in sig.words[:QUERY_WORDS]]
        + [(f"d:{t}", w) for t, w in sig.numbers[:QUERY_NUMBERS]]
    )


class MemoryIndex:
    """StoryIndex in dicts: stories by id, bounded posting lists, the terms each posted."""

    def __init__(self) -> None:
        self._stories: dict[str, StoryState] = {}
        self._postings: dict[str, tuple[str, ...]] = {}  # tuples: the collector skips them
        self._posted: dict[str, frozenset[str]] = {}

    def __len__(self) -> int:
        return len(self._stories)

    def __iter__(self) -> Iterator[StoryState]:
        return iter(list(self._stories.values()))

    def get(self, story_id: str) -> StoryState | None:
        """A story by id, if it is still indexed."""
        return self._stories.get(story_id)

    def candidates(self, query: Query, limit: int) -> list[StoryState]:
        """At most ``limit`` stories sharing the most query weight (ties by id)."""
        found: dict[str, float] = {}
        shared, postings = found.get, self._postings.get
        for term, weight in query:
            for story_id in postings(term, ()):
                found[story_id] = shared(story_id, 0.0) + weight
        best = heapq.nsmallest(limit, [(-weight, story_id) for story_id, weight in found.items()])
        return [self._stories[story_id] for _, story_id in best]

    def put(self, story: StoryState) -> None:
        """Add or replace a story; post the terms it did not post yet."""
        self._stories[story.id] = story
        before = self._posted.get(story.id, frozenset())
        terms = story_terms(story)
        self._posted[story.id] = before | terms
        for term in sorted(terms - before):
            ids = self._postings.get(term, ())
            if len(ids) >= MAX_POSTINGS:
                gone, ids = ids[0], ids[1:]
                self._posted[gone] = self._posted.get(gone, frozenset()) - {term}
            self._postings[term] = (*ids, story.id)

    def expire(self, before: datetime) -> int:
        """Drop stories whose last known report is older than ``before``; how many."""
        old = [s.id for s in self._stories.values() if s.last_seen is not None and s.last_seen < before]
        for story_id in old:
            del self._stories[story_id]
            for term in self._posted.pop(story_id, frozenset()):
                ids = self._postings.get(term, ())
                if story_id in ids:
                    kept = tuple(i for i in ids if i != story_id)
                    if kept:
                        self._postings[term] = kept
                    else:
                        del self._postings[term]
        return len(old)
