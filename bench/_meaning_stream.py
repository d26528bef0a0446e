"""Offsets learned from the stream: each score against recent scores of its (rule, language).

The idea measured here (ADR 0016): relevant articles are rare, so the recent scores of a
rule on articles of one language are mostly the irrelevant mass, and the offset between
languages could be read off that mass instead of being fitted on labels. A
:class:`Reservoir` keeps, per article language, the last ``size`` rows of rule scores
(bounded memory, deterministic given the history, a plain list to persist), seeded with
the bundled generic texts until the stream has filled it; an article is scored *before* it
joins (prequential), against the mean, median or 90th percentile of the reservoir.

The stream is the labelled set in a seeded order with ``filler`` generic articles (the
bundled background texts of that language, cycled) before each labelled one: a real
desk's stream is mostly unrelated news, the labelled set is mostly near-topic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from bench._meaning_set import Labels, Matrix, Space
from monitor.semantic.calibrate import LANGUAGES

Statistic = Literal["mean", "median", "q90"]


@dataclass
class Reservoir:
    """The last ``size`` score rows (one score per rule) seen per article language."""

    size: int = 64
    rows: dict[str, deque[tuple[float, ...]]] = field(default_factory=dict)

    def add(self, language: str, scores: Iterable[float]) -> None:
        kept = self.rows.setdefault(language, deque(maxlen=self.size))
        kept.append(tuple(float(s) for s in scores))

    def reference(self, language: str, statistic: Statistic, rules: int) -> Matrix:
        """Where the recent mass of each rule sits in this language (zeros before anything is seen)."""
        kept = self.rows.get(language)
        if not kept:
            return np.zeros(rules)
        rows = np.array(kept)
        if statistic == "mean":
            return np.asarray(rows.mean(axis=0))
        if statistic == "median":
            return np.asarray(np.median(rows, axis=0))
        return np.asarray(np.quantile(rows, 0.9, axis=0))

    def state(self) -> dict[str, list[list[float]]]:
        """What a store would keep (lists of floats, oldest first)."""
        return {language: [list(row) for row in rows] for language, rows in self.rows.items()}


def stream_offsets(
    space: Space,
    labels: Labels,
    *,
    filler: int,
    statistic: Statistic = "mean",
    size: int = 64,
    seed: int = 12,
) -> Matrix:
    """Every labelled pair's cosine minus its reservoir reference, in one simulated stream."""
    cosine = space.whole_p @ space.rule_q.T
    generic = _generic_scores(space)
    reservoir = Reservoir(size)
    for language, rows in generic.items():
        for row in rows:
            reservoir.add(language, row)
    out = np.zeros_like(cosine)
    turn = dict.fromkeys(generic, 0)
    for i in np.random.default_rng(seed).permutation(len(cosine)):
        language = str(labels.language[i])
        rows = generic.get(language, np.zeros((0, cosine.shape[1])))
        for _ in range(filler if len(rows) else 0):
            reservoir.add(language, rows[turn[language] % len(rows)])
            turn[language] += 1
        out[i] = cosine[i] - reservoir.reference(language, statistic, cosine.shape[1])
        reservoir.add(language, cosine[i])
    return out


def _generic_scores(space: Space) -> Mapping[str, Matrix]:
    scores = space.background_p @ space.rule_q.T
    return {lang: scores[space.background_language == lang] for lang in LANGUAGES}
