"""The calibration steps ``python -m bench meaning`` compares, and the fit of the shipped one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bench._meaning_set import TOPICS, Labels, Mask, Matrix, Space, load_topics
from monitor.semantic import AboutMatcher, AboutRule
from monitor.semantic.calibrate import (
    DEFAULT_MIN_SIMILARITY,
    LANGUAGES,
    Bundle,
    Calibration,
)
from monitor.semantic.codec import ArticleEmbedding
from monitor.semantic.embedder import unit_rows


def counts(scores: Matrix, labels: Labels, rows: Mask, threshold: float) -> tuple[int, int, int]:
    """(tp, fp, fn) over every (article in ``rows``, rule) pair."""
    predicted = scores[rows] >= threshold
    truth = labels.truth[rows]
    return int((predicted & truth).sum()), int((predicted & ~truth).sum()), int((~predicted & truth).sum())


def rates(tp: int, fp: int, fn: int) -> tuple[float, float]:
    """(recall, precision); an empty denominator counts as 1."""
    return (tp / (tp + fn) if tp + fn else 1.0), (tp / (tp + fp) if tp + fp else 1.0)


def tune(scores: Matrix, labels: Labels) -> float:
    """The threshold that maximises min(recall, precision) on dev (then their sum)."""
    best: tuple[tuple[float, float], float] | None = None
    for threshold in np.unique(scores[labels.dev]):
        recall, precision = rates(*counts(scores, labels, labels.dev, float(threshold)))
        key = (min(recall, precision), recall + precision)
        if best is None or key > best[0]:
            best = (key, float(threshold))
    assert best is not None
    return best[1]


def _max_over_sentences(space: Space, rules: Matrix, n: int) -> Matrix:
    out = np.full((n, rules.shape[0]), -1.0)
    np.maximum.at(out, space.owner, space.sentences @ rules.T)
    return out


def _row_z(scores: Matrix, others: Matrix) -> Matrix:
    z: Matrix = (scores - others.mean(1, keepdims=True)) / others.std(1, keepdims=True)
    return z


def _per_language_background(space: Space, labels: Labels) -> Matrix:
    """Score minus the rule's mean over background articles in the article's language."""
    rule_vs_bg = space.background_p @ space.rule_q.T
    means = {lang: rule_vs_bg[space.background_language == lang].mean(0) for lang in LANGUAGES}
    shifted: Matrix = space.whole_p @ space.rule_q.T - np.array([means[lang] for lang in labels.language])
    return shifted


def _centred(space: Space, labels: Labels, alpha: float = 0.5) -> Matrix:
    """Cosine after moving both sides away from their language's background centroid."""
    passage = {lang: space.background_p[space.background_language == lang].mean(0) for lang in LANGUAGES}
    query = {lang: space.background_q[space.background_language == lang].mean(0) for lang in LANGUAGES}
    articles = unit_rows(space.whole_p - alpha * np.array([passage[lang] for lang in labels.language]))
    rules = unit_rows(space.rule_q - alpha * np.array([query[lang] for lang in labels.rule_language]))
    return np.asarray(articles @ rules.T, dtype=np.float64)


def _several_descriptions(space: Space, languages: Sequence[str]) -> Matrix:
    """Max over the rule's description written in each of ``languages``."""
    picked = space.translations_q[:, [LANGUAGES.index(lang) for lang in languages], :]
    return np.asarray(np.einsum("nd,rld->nrl", space.whole_p, picked).max(axis=2), dtype=np.float64)


def fit_logistic(features: Matrix, target: Mask, l2: float = 1e-4, steps: int = 60) -> Matrix:
    """Weights (the last one is the bias) of a logistic regression, by Newton steps."""
    x = np.hstack([features, np.ones((len(features), 1))])
    y = target.astype(np.float64)
    beta = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -60, 60)))
        gradient = x.T @ (p - y) / len(y) + l2 * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x / len(y) + l2 * np.eye(x.shape[1])
        beta = beta - np.linalg.solve(hessian, gradient)
    return beta


def same_language(labels: Labels) -> Mask:
    return np.asarray(labels.language[:, None] == labels.rule_language[None, :])


def fit_calibration(space: Space, labels: Labels, model_id: str) -> Calibration:
    """The shipped calibration, from dev pairs only.

    A logistic regression on (cosine, same language) gives the direction: how much a
    shared language is worth in cosine. Along it, two dev thresholds pin the scale a
    user sets ``min_similarity`` on: 0.5 where recall and precision balance best (max of
    their minimum), and 0.3 where recall first reaches 0.95. (The regression's own
    slope is so steep that 0.4 and 0.6 would differ by half the recall.)
    """
    cosine = space.whole_p @ space.rule_q.T
    same = same_language(labels).astype(np.float64)
    features = np.stack([cosine[labels.dev].ravel(), same[labels.dev].ravel()], 1)
    weight, same_weight, _ = fit_logistic(features, labels.truth[labels.dev].ravel())
    direction = cosine + (same_weight / weight) * same  # the cosine, corrected for a shared language
    balance = _balance_point(direction, labels)
    lenient = _recall_point(direction, labels, 0.95)
    # A set that separates cleanly reaches 95% recall above its balance point: keep the regression's slope.
    scale = math.log(0.3 / 0.7) / (lenient - balance) if lenient < balance else float(weight)
    return Calibration(
        model_id,
        weight=float(scale),
        bias=float(-scale * balance),
        same_language=float(scale * same_weight / weight),
        fitted=True,
    )


def _balance_point(scores: Matrix, labels: Labels) -> float:
    """Midway between the dev threshold that maximises min(recall, precision) and the next score below."""
    threshold = tune(scores, labels)
    below = scores[labels.dev][scores[labels.dev] < threshold]
    return (threshold + float(below.max())) / 2 if len(below) else threshold


def _recall_point(scores: Matrix, labels: Labels, recall: float) -> float:
    """The highest dev threshold at which recall reaches ``recall``."""
    positives = np.sort(scores[labels.dev][labels.truth[labels.dev]])[::-1]
    return float(positives[max(0, math.ceil(recall * len(positives)) - 1)])


def through_matcher(
    space: Space, labels: Labels, bundle: Bundle, model_id: str, languages: bool, lexical: bool = False
) -> Matrix:
    """Similarities as monitor computes them: ``AboutMatcher.score`` on the same vectors.

    With ``lexical``, a rule whose keywords (``topics.json``) occur in the article gets
    the matcher's keyword relief; the result is then shifted so that the default
    threshold reads the lowered bar (similarity + relief for those pairs).
    """
    matcher = AboutMatcher(_Precomputed(model_id, space), bundle)
    topics = load_topics()
    rules = [
        AboutRule(t, topics[t]["about"], language=topics[t]["language"] if languages else None)
        for t in TOPICS
    ]
    matcher.prepare(rules)
    out = np.zeros(labels.truth.shape)
    for i, row in enumerate(space.whole_p):
        embedding = ArticleEmbedding(matcher.tag, row.astype(np.float32))
        hits = {t for t, hit in zip(TOPICS, labels.keyword[i], strict=True) if hit} if lexical else set()
        scored = matcher.score(embedding, str(labels.language[i]) if languages else None, lexical_hits=hits)
        out[i] = [s.similarity + (DEFAULT_MIN_SIMILARITY - s.threshold) for s in scored]
    return out


class _Precomputed:
    """An Embedder that answers the rule descriptions from the cached vectors."""

    def __init__(self, model_id: str, space: Space) -> None:
        self.model_id = model_id
        self.dim = space.rule_q.shape[1]
        self._rules = space.rule_q

    def embed(self, texts: Sequence[str], kind: str) -> npt.NDArray[np.float32]:
        assert kind == "query" and len(texts) == len(self._rules)
        return self._rules.astype(np.float32)


@dataclass(frozen=True, slots=True)
class Step:
    """One calibration step: how it scores, and whether its threshold is tuned on dev."""

    name: str
    score: Callable[[Space, Labels], Matrix]
    tuned: bool = True


def steps(bundle: Bundle, model_id: str) -> list[Step]:
    """The steps in the order ADR 0016 discusses them; the last calibrated one ships."""
    n = len

    def cosine(s: Space, _: Labels) -> Matrix:
        return s.whole_p @ s.rule_q.T

    def shipped(s: Space, lab: Labels) -> Matrix:
        return through_matcher(s, lab, bundle, model_id, languages=True)

    def relief(s: Space, lab: Labels) -> Matrix:
        return through_matcher(s, lab, bundle, model_id, languages=True, lexical=True)

    return [
        Step("cosine, one threshold (query:/passage:)", cosine),
        Step("prefixes passage:/passage:", lambda s, lab: s.whole_p @ s.rule_p.T),
        Step("prefixes query:/query:", lambda s, lab: s.whole_q @ s.rule_q.T),
        Step(
            "best sentence (max over title, sentences)",
            lambda s, lab: _max_over_sentences(s, s.rule_q, n(lab.dev)),
        ),
        Step(
            "max(whole, best sentence)",
            lambda s, lab: np.maximum(cosine(s, lab), _max_over_sentences(s, s.rule_q, n(lab.dev))),
        ),
        Step(
            "background z (vs 144 generic texts)",
            lambda s, lab: _row_z(cosine(s, lab), s.whole_p @ s.background_q.T),
        ),
        Step("per-language background (rule - its mean there)", _per_language_background),
        Step("language centring (0.5 x centroid)", _centred),
        Step("calibrated: same-language correction", shipped, tuned=False),
        Step(
            "calibrated, languages guessed from vectors",
            lambda s, lab: through_matcher(s, lab, bundle, model_id, languages=False),
            tuned=False,
        ),
        Step("calibrated + keyword hit lowers the bar", relief, tuned=False),
        Step("descriptions in en+uk+ru (max)", lambda s, lab: _several_descriptions(s, ("en", "uk", "ru"))),
        Step("descriptions in all 12 languages (max)", lambda s, lab: _several_descriptions(s, LANGUAGES)),
    ]


def best_relief(scores: Matrix, labels: Labels) -> float:
    """The keyword relief (0 to 0.4) that does best on dev at the default threshold."""
    best = (-1.0, 0.0)
    for relief in np.arange(0.0, 0.41, 0.02):
        boosted = scores + relief * labels.keyword
        recall, precision = rates(*counts(boosted, labels, labels.dev, DEFAULT_MIN_SIMILARITY))
        if min(recall, precision) > best[0] + 1e-9:
            best = (min(recall, precision), float(relief))
    return best[1]


def evaluate(step: Step, space: Space, labels: Labels) -> dict[str, Any]:
    """One step's threshold, dev and test rates, and per-language test counts."""
    scores = step.score(space, labels)
    threshold = tune(scores, labels) if step.tuned else DEFAULT_MIN_SIMILARITY
    dev = rates(*counts(scores, labels, labels.dev, threshold))
    test_rows = ~labels.dev
    test = rates(*counts(scores, labels, test_rows, threshold))
    per_language = {}
    for lang in LANGUAGES:
        tp, fp, fn = counts(scores, labels, test_rows & (labels.language == lang), threshold)
        recall, precision = rates(tp, fp, fn)
        per_language[lang] = {"tp": tp, "fp": fp, "fn": fn, "recall": recall, "precision": precision}
    return {
        "step": step.name,
        "threshold": threshold,
        "tuned_on_dev": step.tuned,
        "dev": {"recall": dev[0], "precision": dev[1]},
        "test": {"recall": test[0], "precision": test[1]},
        "per_language": per_language,
    }
