"""The calibration steps ``python -m bench meaning`` compares, and the fit of the shipped one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bench._meaning_scores import (
    centred,
    fit_logistic,
    keyword_odds,
    language_offsets,
    learned_segments,
    max_over_sentences,
    own_description,
    per_language_background,
    row_z,
    same_language,
    several_descriptions,
    title_vectors,
)
from bench._meaning_set import TOPICS, Labels, Mask, Matrix, Space, load_topics
from bench._meaning_stream import stream_offsets
from monitor.semantic import AboutMatcher, AboutRule
from monitor.semantic.calibrate import (
    DEFAULT_MIN_SIMILARITY,
    LANGUAGES,
    Bundle,
    Calibration,
)
from monitor.semantic.codec import ArticleEmbedding


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
    """The steps in the order ADR 0016 discusses them; the first calibrated one ships."""
    return [
        *_text_steps(),
        *_normalising_steps(),
        *_calibrated_steps(bundle, model_id),
        *_description_steps(),
    ]


def _cosine(s: Space, _: Labels) -> Matrix:
    return s.whole_p @ s.rule_q.T


def _text_steps() -> list[Step]:
    """What text is embedded, and how (prefixes, title, sentences)."""
    return [
        Step("cosine, one threshold (query:/passage:)", _cosine),
        Step("prefixes passage:/passage:", lambda s, lab: s.whole_p @ s.rule_p.T),
        Step("prefixes query:/query:", lambda s, lab: s.whole_q @ s.rule_q.T),
        Step("title only", lambda s, lab: title_vectors(s, len(lab.dev)) @ s.rule_q.T),
        Step(
            "best sentence (max over title, sentences)",
            lambda s, lab: max_over_sentences(s, s.rule_q, len(lab.dev)),
        ),
        Step(
            "max(whole, best sentence)",
            lambda s, lab: np.maximum(_cosine(s, lab), max_over_sentences(s, s.rule_q, len(lab.dev))),
        ),
        Step("whole + title + best sentence, fitted on dev", learned_segments),
    ]


def _normalising_steps() -> list[Step]:
    """Offsets from unlabelled text (background, the stream) or fitted per language on dev."""
    return [
        Step(
            "background z (vs 144 generic texts)",
            lambda s, lab: row_z(_cosine(s, lab), s.whole_p @ s.background_q.T),
        ),
        Step("per-language background (rule - its mean there)", per_language_background),
        Step("language centring (0.5 x centroid)", centred),
        Step("stream: minus reservoir mean, no filler", lambda s, lab: stream_offsets(s, lab, filler=0)),
        Step(
            "stream: minus reservoir mean, 3 generic/article", lambda s, lab: stream_offsets(s, lab, filler=3)
        ),
        Step(
            "stream: minus reservoir mean, 10 generic/article",
            lambda s, lab: stream_offsets(s, lab, filler=10),
        ),
        Step(
            "stream: minus reservoir median, 3 generic/article",
            lambda s, lab: stream_offsets(s, lab, filler=3, statistic="median"),
        ),
        Step(
            "stream: minus reservoir 90th pct, 3 generic/article",
            lambda s, lab: stream_offsets(s, lab, filler=3, statistic="q90"),
        ),
        Step("same language + article-language offsets (dev)", language_offsets),
        Step(
            "same language + language-pair offsets (dev)",
            lambda s, lab: language_offsets(s, lab, pairs=True),
        ),
    ]


def _calibrated_steps(bundle: Bundle, model_id: str) -> list[Step]:
    """The shipped calibration through ``AboutMatcher``, at the default ``min_similarity``."""
    c = bundle.calibration
    return [
        Step(
            "calibrated: same-language correction",
            lambda s, lab: through_matcher(s, lab, bundle, model_id, languages=True),
            tuned=False,
        ),
        Step(
            "calibrated, languages guessed from vectors",
            lambda s, lab: through_matcher(s, lab, bundle, model_id, languages=False),
            tuned=False,
        ),
        Step(
            "calibrated + keyword hit lowers the bar",
            lambda s, lab: through_matcher(s, lab, bundle, model_id, languages=True, lexical=True),
            tuned=False,
        ),
        Step(
            "calibrated + keyword hit as fitted log-odds",
            lambda s, lab: keyword_odds(s, lab, c.weight, c.bias, c.same_language),
            tuned=False,
        ),
    ]


def _description_steps() -> list[Step]:
    """A desk that writes its description in several languages."""
    return [
        Step("descriptions in en+uk+ru (max)", lambda s, lab: several_descriptions(s, ("en", "uk", "ru"))),
        Step("descriptions in all 12 languages (max)", lambda s, lab: several_descriptions(s, LANGUAGES)),
        Step("description in the article's language", own_description),
    ]


def interval(
    scores: Matrix, labels: Labels, rows: Mask, threshold: float, draws: int = 1000, seed: int = 16
) -> dict[str, tuple[float, float]]:
    """5th and 95th percentiles of recall and precision over ``rows`` with articles resampled."""
    rng = np.random.default_rng(seed)
    index = np.flatnonzero(rows)
    predicted = scores[index] >= threshold
    truth = labels.truth[index]
    recalls, precisions = [], []
    for _ in range(draws):
        pick = rng.integers(0, len(index), len(index))
        p, t = predicted[pick], truth[pick]
        recall, precision = rates(int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum()))
        recalls.append(recall)
        precisions.append(precision)
    return {
        "recall": (float(np.percentile(recalls, 5)), float(np.percentile(recalls, 95))),
        "precision": (float(np.percentile(precisions, 5)), float(np.percentile(precisions, 95))),
    }


def oracle_errors(scores: Matrix, labels: Labels) -> dict[str, int]:
    """Errors left with the best threshold per (rule, article language), chosen on ALL articles.

    Not a result (it sees the test labels): the model's own limit, what perfect per-pair
    offsets would reach at best, against which every offset step can be read."""
    misses = wrong = 0
    for lang in LANGUAGES:
        rows = labels.language == lang
        for r in range(scores.shape[1]):
            s, t = scores[rows, r], labels.truth[rows, r]
            cut = min(np.unique(s), key=lambda c: int(((s >= c) & ~t).sum() + ((s < c) & t).sum()))
            misses += int(((s < cut) & t).sum())
            wrong += int(((s >= cut) & ~t).sum())
    return {"positives": int(labels.truth.sum()), "missed": misses, "false": wrong}


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
    """One step's threshold, dev and test rates, and per-language counts on each half."""
    scores = step.score(space, labels)
    threshold = tune(scores, labels) if step.tuned else DEFAULT_MIN_SIMILARITY
    dev = rates(*counts(scores, labels, labels.dev, threshold))
    test = rates(*counts(scores, labels, ~labels.dev, threshold))
    return {
        "step": step.name,
        "threshold": threshold,
        "tuned_on_dev": step.tuned,
        "dev": {"recall": dev[0], "precision": dev[1]},
        "test": {"recall": test[0], "precision": test[1]},
        "per_language": per_language(scores, labels, ~labels.dev, threshold),
        "per_language_dev": per_language(scores, labels, labels.dev, threshold),
    }


def per_language(scores: Matrix, labels: Labels, rows: Mask, threshold: float) -> dict[str, dict[str, Any]]:
    """Counts and rates in each language over ``rows``."""
    out = {}
    for lang in LANGUAGES:
        tp, fp, fn = counts(scores, labels, rows & (labels.language == lang), threshold)
        recall, precision = rates(tp, fp, fn)
        out[lang] = {"tp": tp, "fp": fp, "fn": fn, "recall": recall, "precision": precision}
    return out
