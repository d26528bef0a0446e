"""Assign each article to the open story it reports on, or to a new story; say why.

``StoryAssigner.assign`` is the one decision: extract the article's signature, take
at most ``candidates`` stories from the index, score the open ones (``decide``), join
the most probable if it reaches the threshold, else start a story, and put the
result back into the index. It is deterministic (ties go to the smaller story id) and
returns an ``Explanation`` for logs and ``monitor stories show``: the score, the names
and words shared, and, when it refused the best candidate, the names and years that
conflicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.stories.background import TermStats
from monitor.stories.decide import WEIGHTS, Evidence, core_names, cosines, evidence, main_years, story_names
from monitor.stories.features import Signature, StoryArticle, Vector, extract
from monitor.stories.index import StoryIndex, query_terms
from monitor.stories.state import StoryState, add_article, new_story

DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_THRESHOLD = 0.5
DEFAULT_CANDIDATES = 16  # stories the index returns for one article
SCORED = 4  # of those, the ones with most overlap get the full evidence
SHOWN = 5


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an article went where it went (all lists strongest first, at most SHOWN)."""

    score: float  # P(same story) of the best candidate; 0.0 when there was none
    candidate: str | None  # the best candidate's story id
    considered: int  # candidates scored (open, plausible)
    shared_names: tuple[str, ...] = ()
    shared_words: tuple[str, ...] = ()
    shared_numbers: tuple[str, ...] = ()
    conflicting_names: tuple[str, ...] = ()  # the article's lead names the story lacks
    missing_names: tuple[str, ...] = ()  # the story's core names the article lacks
    conflicting_years: tuple[str, ...] = ()  # article's year, then the story's
    evidence: Evidence | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """The story an article now belongs to, whether it started it, and why."""

    article: str
    story: StoryState
    created: bool
    explanation: Explanation


class StoryAssigner:
    """Single-pass story assignment over a StoryIndex (see the module docstring)."""

    def __init__(
        self,
        index: StoryIndex,
        stats: TermStats,
        *,
        window: timedelta = DEFAULT_WINDOW,
        threshold: float = DEFAULT_THRESHOLD,
        candidates: int = DEFAULT_CANDIDATES,
        weights: Sequence[float] = WEIGHTS,
    ) -> None:
        self.index = index
        self.stats = stats
        self.window_s = window.total_seconds()
        self.threshold = threshold
        self.limit = candidates
        self.weights = tuple(weights)

    def assign(self, article: StoryArticle) -> Assignment:
        """Put ``article`` into a story (and the index); return where and why."""
        sig = extract(article, self.stats)
        best, proof, considered = self._best(sig)
        score = proof.probability(self.weights) if proof is not None else 0.0
        joins = best is not None and score >= self.threshold
        story = add_article(best, sig) if joins and best is not None else new_story(sig)
        self.index.put(story)
        why = explain(sig, best, proof, considered, score)
        return Assignment(article=article.key, story=story, created=not joins, explanation=why)

    def expire(self, now: datetime) -> int:
        """Forget stories closed for good (no report within the window before ``now``)."""
        return self.index.expire(now - timedelta(seconds=self.window_s))

    def _best(self, sig: Signature) -> tuple[StoryState | None, Evidence | None, int]:
        """The most probable open, plausible candidate (ties: smaller id), and how many."""
        looks = []
        for n, story in enumerate(self.index.candidates(query_terms(sig), self.limit)):
            if story.is_open(sig.published, self.window_s):
                first_look = cosines(sig, story)
                looks.append((-sum(first_look), story.id, n, story, first_look))
        looks.sort()  # plain tuples: the unique n ends every tie before a story is compared
        scored: list[tuple[float, str, int, StoryState, Evidence]] = []
        for _, _, n, story, first_look in looks[:SCORED]:
            proof = evidence(sig, story, first_look)
            if proof.plausible():
                scored.append((-proof.probability(self.weights), story.id, n, story, proof))
        if not scored:
            return None, None, 0
        _, _, _, story, proof = min(scored)
        return story, proof, len(scored)


def explain(
    sig: Signature, story: StoryState | None, proof: Evidence | None, considered: int, score: float
) -> Explanation:
    """Shared and conflicting terms between an article and its best candidate."""
    if story is None or proof is None:
        return Explanation(score=0.0, candidate=None, considered=considered)
    names_kept = story_names(story)
    years = main_years(sig.numbers, 1) + main_years(story.numbers, 2) if proof.year_conflict else []
    return Explanation(
        score=round(score, 4),
        candidate=story.id,
        considered=considered,
        shared_names=_shared(sig.names, story.names),
        shared_words=_shared(sig.words, story.words),
        shared_numbers=_shared(sig.numbers, story.numbers),
        conflicting_names=tuple(n for n in sig.lead if n not in names_kept)[:SHOWN],
        missing_names=tuple(n for n in core_names(story) if n not in sig.name_words)[:SHOWN],
        conflicting_years=tuple(years),
        evidence=proof,
    )


def _shared(vector: Vector, centroid: Vector) -> tuple[str, ...]:
    """Terms in both, by their weight in the article."""
    present = {t for t, _ in centroid}
    return tuple(t for t, _ in vector if t in present)[:SHOWN]
