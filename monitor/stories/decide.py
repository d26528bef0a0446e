"""Does this article report on that story? Scores, conflicts and the decision.

For each candidate story the article gets nine evidence values (``Evidence``):

- three cosines, article vector against story centroid: words, names, numbers;
- name conflicts, which are what tell two events of one kind apart: the share of the
  article's lead names that the story never named (``lead_missing``), the share of
  the story's core names (named by at least half its articles) that the article does
  not name (``core_missing``), the share of the story's two main lead names missing
  from the article (``story_lead_missing``), and a year gap (the year the article
  reports from, its publication year or else its main year in the text, against the
  story's years: 0 when they meet, 1 at YEAR_GAP years apart);
- the product of the first two conflicts, and log(story size).

A logistic model turns them into the probability that the article reports on the
story; the article joins the most probable open story when that probability reaches
``threshold``, else it starts a story. The weights were fitted on the dev half of the
ECB+ story set (odd topics; ``python -m bench stories -- --fit``, ADR 0014), never on
the test half.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import mul
from typing import TypeVar, cast

from monitor.stories.features import YEAR, Signature, Vector
from monitor.stories.state import StoryState

WEIGHTS = (-0.91, 3.20, 3.82, 3.45, -1.09, -2.06, 0.17, -2.70, 0.20, -0.86)
"""Intercept, then one weight per Evidence field in order (logistic regression)."""
STORY_YEARS = 32  # every year among the story's kept numbers
YEAR_GAP = 4
MIN_OVERLAP = 0.1  # words + names cosine below this: not even a candidate
MIN_SHARED = 2  # ... nor with fewer shared terms than this
CORE_NAMES = 3


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one article and one story have in common, and where they conflict."""

    words: float
    names: float
    numbers: float
    lead_missing: float
    core_missing: float
    story_lead_missing: float
    year_conflict: float
    articles: int
    shared: int = 0  # distinct terms of the article the story also has (any channel)

    def features(self) -> tuple[float, ...]:
        """The model's inputs, in WEIGHTS order after the intercept."""
        return (
            self.words,
            self.names,
            self.numbers,
            self.lead_missing,
            self.core_missing,
            self.story_lead_missing,
            self.year_conflict,
            self.lead_missing * self.core_missing,
            math.log(max(1, self.articles)),
        )

    def probability(self, weights: Sequence[float] = WEIGHTS) -> float:
        """P(same story) under the fitted model (``weights``: intercept first, as WEIGHTS)."""
        z = weights[0] + sum(w * x for w, x in zip(weights[1:], self.features(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def plausible(self) -> bool:
        """Enough overlap to be worth scoring at all: a single shared term (two headlines
        that both say ATACMS) is a topic, not yet an event."""
        return self.words + self.names >= MIN_OVERLAP and self.shared >= MIN_SHARED


T = TypeVar("T")


def cosine(article: Mapping[str, float], centroid: Mapping[str, float], length: float) -> float:
    """Cosine of an article's unit vector and a story centroid of ``length`` (as maps)."""
    if not article or not length:
        return 0.0
    common = article.keys() & centroid.keys()  # in C: most pairs share a term or two, or none
    if not common:
        return 0.0
    # In the article's order, so the sum is the same in every process (two add up alike either way).
    shared = [t for t in article if t in common] if len(common) > 2 else common
    products: Iterable[float] = map(mul, map(article.__getitem__, shared), map(centroid.__getitem__, shared))
    return sum(products) / length


def cosines(sig: Signature, story: StoryState) -> tuple[float, float]:
    """Words and names cosines: the cheap first look at a candidate (``overlap``)."""
    (words, names, _), (s_words, s_names, _) = sig.lookup, story.lookup
    return cosine(words, s_words, story.norms[0]), cosine(names, s_names, story.norms[1])


def overlap(sig: Signature, story: StoryState) -> float:
    """Words plus names cosine."""
    return sum(cosines(sig, story))


def _kept(story: StoryState, key: str, derive: Callable[[StoryState], T]) -> T:
    """``derive(story)``, computed once per story state (see ``StoryState.memo``)."""
    if key not in story.memo:
        story.memo[key] = derive(story)
    return cast(T, story.memo[key])


def core_names(story: StoryState) -> list[str]:
    """The CORE_NAMES names that at least half the story's articles named, most weighty
    first (kept with the state)."""
    return _kept(story, "core", _core_names)


def _core_names(story: StoryState) -> list[str]:
    weight = dict(story.names)
    floor = max(1, story.articles / 2)
    core = [(n, c) for n, c in story.name_counts if c >= floor]
    core.sort(key=lambda nc: (-nc[1], -weight.get(nc[0], 0.0), nc[0]))
    return [n for n, _ in core[:CORE_NAMES]]


def story_names(story: StoryState) -> frozenset[str]:
    """Every name word the story keeps a count for (kept with the state)."""
    return _kept(story, "names", _name_set)


def _name_set(story: StoryState) -> frozenset[str]:
    return frozenset(n for n, _ in story.name_counts)


def story_leads(story: StoryState, limit: int = 2) -> list[str]:
    """The names the story's articles led with most often."""
    return [n for n, _ in story.lead_counts[:limit]]


def main_years(vector: Vector, limit: int) -> list[str]:
    """The strongest year-like numbers (1950-2049) of a numbers vector."""
    return [t for t, _ in vector if YEAR.fullmatch(t)][:limit]


def event_years(sig: Signature) -> set[str]:
    """The year an article reports from: its publication year, else its main year in the text."""
    if sig.published is not None:
        return {str(sig.published.year)}
    return set(main_years(sig.numbers, 1))


def story_event_years(story: StoryState) -> set[str]:
    """Years a story's reports came from (known publication times) and its two main years."""
    years = set(main_years(story.numbers, STORY_YEARS))
    if story.first_seen is not None and story.last_seen is not None:
        years |= {str(y) for y in range(story.first_seen.year, story.last_seen.year + 1)}
    return years


def year_gap(article: set[str], story: set[str]) -> float:
    """0 when the years agree (or one side has none), rising to 1 at YEAR_GAP years apart: a
    year or two is often a background mention (last season), five is another event."""
    if not article or not story:
        return 0.0
    gap = min(abs(int(a) - int(s)) for a in article for s in story)
    return min(1.0, gap / YEAR_GAP)


def _missing(names: list[str] | tuple[str, ...], present: frozenset[str] | set[str]) -> float:
    """Share of ``names`` not in ``present`` (0 when there are none to miss)."""
    return sum(1 for n in names if n not in present) / len(names) if names else 0.0


def evidence(sig: Signature, story: StoryState, first_look: tuple[float, float] | None = None) -> Evidence:
    """Compare one article with one story (``first_look``: its ``cosines``, if known)."""
    names_kept = story_names(story)
    conflict = year_gap(event_years(sig), _kept(story, "years", story_event_years))
    (words, names, numbers), (s_words, s_names, s_numbers) = sig.lookup, story.lookup
    words_cosine, names_cosine = first_look or cosines(sig, story)
    return Evidence(
        words=words_cosine,
        names=names_cosine,
        numbers=cosine(numbers, s_numbers, story.norms[2]),
        lead_missing=_missing(sig.lead, names_kept),
        core_missing=_missing(core_names(story), sig.name_words),
        story_lead_missing=_missing(story_leads(story), sig.name_words),
        year_conflict=conflict,
        articles=story.articles,
        shared=len(
            (words.keys() & s_words.keys())
            | (names.keys() & s_names.keys())
            | (numbers.keys() & s_numbers.keys())
        ),
    )
