"""A story as plain frozen data: what the index keeps and the store can persist.

Per story: its id (the key of its first article), first article, first and last
publication time, article count, and bounded centroids of its articles' vectors
(sums of unit vectors, strongest terms only), the count of articles that named each
name, and the count of articles whose lead named it. Nothing grows with the number of
articles beyond these caps, so a story is a fixed-size row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from monitor.stories.features import Signature, Vector

MAX_CENTROID_WORDS, MAX_CENTROID_NAMES, MAX_CENTROID_NUMBERS = 128, 64, 32
MAX_NAME_COUNTS, MAX_LEAD_COUNTS = 64, 16
Counts = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class StoryState:
    """One story; ``last_seen`` is the latest *known* publication time (None: none known)."""

    id: str
    first_article: str
    first_seen: datetime | None
    last_seen: datetime | None
    articles: int
    lang: str
    words: Vector
    names: Vector
    numbers: Vector
    name_counts: Counts  # name word -> articles that named it
    lead_counts: Counts  # name word -> articles that led with it
    norms: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0), compare=False, repr=False)
    lookup: tuple[Mapping[str, float], ...] = field(default=(), compare=False, repr=False)
    memo: dict[str, object] = field(default_factory=dict, init=False, compare=False, repr=False)
    """What scoring derives from this (immutable) state, kept on first use (``decide``):
    a story is scored against many articles; ``replace`` starts a new state empty."""

    def __post_init__(self) -> None:
        """Derived once, never stored: the centroids' lengths and term -> weight maps."""
        vectors = (self.words, self.names, self.numbers)
        object.__setattr__(self, "norms", tuple(norm(v) for v in vectors))
        object.__setattr__(self, "lookup", tuple(dict(v) for v in vectors))

    def is_open(self, at: datetime | None, window_s: float) -> bool:
        """Does the story still take reports at ``at``? Unknown times never close it."""
        if at is None or self.last_seen is None:
            return True
        return (at - self.last_seen).total_seconds() <= window_s


def new_story(sig: Signature) -> StoryState:
    """A story of one article."""
    return StoryState(
        id=sig.key,
        first_article=sig.key,
        first_seen=sig.published,
        last_seen=sig.published,
        articles=1,
        lang=sig.lang,
        words=sig.words,
        names=sig.names,
        numbers=sig.numbers,
        name_counts=_top_counts(((w, 1) for w in sig.name_words), MAX_NAME_COUNTS),
        lead_counts=_top_counts(((w, 1) for w in sig.lead), MAX_LEAD_COUNTS),
    )


def add_article(story: StoryState, sig: Signature) -> StoryState:
    """The story with one more article folded into its centroids and counts."""
    first, last = story.first_seen, story.last_seen
    if sig.published is not None:
        first = sig.published if first is None else min(first, sig.published)
        last = sig.published if last is None else max(last, sig.published)
    return replace(
        story,
        first_seen=first,
        last_seen=last,
        articles=story.articles + 1,
        words=_add_vectors(story.words, sig.words, MAX_CENTROID_WORDS),
        names=_add_vectors(story.names, sig.names, MAX_CENTROID_NAMES),
        numbers=_add_vectors(story.numbers, sig.numbers, MAX_CENTROID_NUMBERS),
        name_counts=_add_counts(story.name_counts, sig.name_words, MAX_NAME_COUNTS),
        lead_counts=_add_counts(story.lead_counts, sig.lead, MAX_LEAD_COUNTS),
    )


def norm(vector: Vector) -> float:
    """Euclidean length."""
    return math.sqrt(sum([w * w for _, w in vector]))


def _add_vectors(centroid: Vector, vector: Vector, limit: int) -> Vector:
    """Sum, keep the strongest ``limit`` terms (strongest first, ties by term)."""
    total = dict(centroid)
    for term, weight in vector:
        total[term] = total.get(term, 0.0) + weight
    strongest = sorted([(-weight, term) for term, weight in total.items()])[:limit]  # a plain tuple sort
    return tuple((term, -weight) for weight, term in strongest)


def _add_counts(counts: Counts, words: Iterable[str], limit: int) -> Counts:
    """One more article for each of ``words``."""
    total = dict(counts)
    for word in words:
        total[word] = total.get(word, 0) + 1
    return _top_counts(total.items(), limit)


def _top_counts(items: Iterable[tuple[str, int]], limit: int) -> Counts:
    """The ``limit`` highest counts, highest first, ties by word."""
    strongest = sorted([(-count, word) for word, count in items])[:limit]  # a plain tuple sort
    return tuple([(word, -count) for count, word in strongest])
