"""How the steps of ``python -m bench meaning`` score (articles x rules), given the vectors and labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench._meaning_set import Labels, Mask, Matrix, Space
from monitor.semantic.calibrate import LANGUAGES
from monitor.semantic.embedder import unit_rows


def max_over_sentences(space: Space, rules: Matrix, n: int) -> Matrix:
    """Each article's best sentence cosine (the title counts as a sentence)."""
    out = np.full((n, rules.shape[0]), -1.0)
    np.maximum.at(out, space.owner, space.sentences @ rules.T)
    return out


def row_z(scores: Matrix, others: Matrix) -> Matrix:
    """Each article's scores as z-scores against its scores on ``others``."""
    z: Matrix = (scores - others.mean(1, keepdims=True)) / others.std(1, keepdims=True)
    return z


def per_language_background(space: Space, labels: Labels) -> Matrix:
    """Score minus the rule's mean over background articles in the article's language."""
    rule_vs_bg = space.background_p @ space.rule_q.T
    means = {lang: rule_vs_bg[space.background_language == lang].mean(0) for lang in LANGUAGES}
    shifted: Matrix = space.whole_p @ space.rule_q.T - np.array([means[lang] for lang in labels.language])
    return shifted


def centred(space: Space, labels: Labels, alpha: float = 0.5) -> Matrix:
    """Cosine after moving both sides away from their language's background centroid."""
    passage = {lang: space.background_p[space.background_language == lang].mean(0) for lang in LANGUAGES}
    query = {lang: space.background_q[space.background_language == lang].mean(0) for lang in LANGUAGES}
    articles = unit_rows(space.whole_p - alpha * np.array([passage[lang] for lang in labels.language]))
    rules = unit_rows(space.rule_q - alpha * np.array([query[lang] for lang in labels.rule_language]))
    return np.asarray(articles @ rules.T, dtype=np.float64)


def several_descriptions(space: Space, languages: Sequence[str]) -> Matrix:
    """Max over the rule's description written in each of ``languages``."""
    picked = space.translations_q[:, [LANGUAGES.index(lang) for lang in languages], :]
    return np.asarray(np.einsum("nd,rld->nrl", space.whole_p, picked).max(axis=2), dtype=np.float64)


def fit_logistic(
    features: Matrix, target: Mask, l2: float = 1e-4, steps: int = 60, penalty: Sequence[float] = ()
) -> Matrix:
    """Weights (the last one is the bias) of a logistic regression, by Newton steps.

    ``penalty`` adds a per-feature L2 term (shrinking many small offsets towards 0)."""
    x = np.hstack([features, np.ones((len(features), 1))])
    y = target.astype(np.float64)
    extra = np.zeros(x.shape[1])
    extra[: len(penalty)] = penalty
    ridge = np.diag(extra) + l2 * np.eye(x.shape[1])
    beta = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -60, 60)))
        gradient = x.T @ (p - y) / len(y) + ridge @ beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x / len(y) + ridge
        beta = beta - np.linalg.solve(hessian, gradient)
    return beta


def dev_fitted(features: Matrix, labels: Labels, penalty: Sequence[float] = ()) -> Matrix:
    """The linear score of a logistic regression on ``features`` (articles x rules x k), fit on dev pairs."""
    k = features.shape[2]
    beta = fit_logistic(
        features[labels.dev].reshape(-1, k), labels.truth[labels.dev].ravel(), penalty=penalty
    )
    return np.asarray(features @ beta[:-1] + beta[-1], dtype=np.float64)


def language_offsets(space: Space, labels: Labels, pairs: bool = False, shrink: float = 1e-3) -> Matrix:
    """Cosine, same language and one offset per article language (or per description/article
    language pair), shrunk towards 0 and fitted on dev."""
    cosine = space.whole_p @ space.rule_q.T
    same = same_language(labels)
    if pairs:
        keys = sorted({(r, a) for r in labels.rule_language for a in LANGUAGES if r != a})
        cell = {key: i for i, key in enumerate(keys)}
        onehot = np.zeros((*cosine.shape, len(keys)))
        for (i, r), _ in np.ndenumerate(cosine):
            key = (str(labels.rule_language[r]), str(labels.language[i]))
            if key in cell:
                onehot[i, r, cell[key]] = 1.0
    else:
        onehot = np.zeros((*cosine.shape, len(LANGUAGES)))
        for i, lang in enumerate(labels.language):
            onehot[i, :, LANGUAGES.index(str(lang))] = 1.0
    features = np.concatenate([np.stack([cosine, same.astype(np.float64)], axis=2), onehot], axis=2)
    return dev_fitted(features, labels, [0.0, 0.0] + [shrink] * onehot.shape[2])


def title_vectors(space: Space, n: int) -> Matrix:
    """Each article's first sentence vector (the segmenter puts the title first)."""
    first = np.searchsorted(space.owner, np.arange(n))
    rows = space.sentences[np.minimum(first, len(space.sentences) - 1)] if len(space.sentences) else None
    return space.whole_p if rows is None or len(rows) != n else rows


def learned_segments(space: Space, labels: Labels) -> Matrix:
    """A combination of whole passage, title and best sentence (and same language), fitted on dev."""
    n = len(labels.dev)
    features = np.stack(
        [
            space.whole_p @ space.rule_q.T,
            title_vectors(space, n) @ space.rule_q.T,
            max_over_sentences(space, space.rule_q, n),
            same_language(labels).astype(np.float64),
        ],
        axis=2,
    )
    return dev_fitted(features, labels)


def own_description(space: Space, labels: Labels) -> Matrix:
    """The rule's description written in the article's language (all 12 given)."""
    index = np.array([LANGUAGES.index(str(lang)) for lang in labels.language])
    rows = space.translations_q[:, index, :]  # (rules, articles, dim)
    return np.asarray(np.einsum("nd,rnd->nr", space.whole_p, rows), dtype=np.float64)


def same_language(labels: Labels) -> Mask:
    return np.asarray(labels.language[:, None] == labels.rule_language[None, :])


def keyword_odds(space: Space, labels: Labels, weight: float, bias: float, same: float) -> Matrix:
    """The calibrated similarity with a keyword hit as a fitted log-odds term: the term's size
    maximises the dev likelihood with the calibration held fixed (a second reading of "a hit
    lowers the bar", next to the shipped relief that maximises the dev balance)."""
    base = weight * (space.whole_p @ space.rule_q.T) + bias + same * same_language(labels)
    hits = labels.keyword.astype(np.float64)
    truth, dev = labels.truth, labels.dev

    def likelihood(k: float) -> float:
        p = 1.0 / (1.0 + np.exp(-np.clip(base + k * hits, -60, 60)))
        return float(np.where(truth, np.log(p + 1e-12), np.log(1 - p + 1e-12))[dev].sum())

    best = max(np.arange(0.0, 4.01, 0.05), key=likelihood)
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(base + best * hits, -60, 60))), dtype=np.float64)
