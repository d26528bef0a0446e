"""The labelled set of ``python -m bench meaning`` is complete and its split is fair; the
benchmark's pure parts (threshold tuning, calibration fit) do what ADR 0016 says, on
synthetic scores (the real run embeds for minutes: ``make bench``)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from bench.__main__ import available
from bench.meaning import (
    TOPICS,
    Labels,
    Space,
    TierRow,
    counts,
    fit_calibration,
    load_articles,
    load_topics,
    rates,
    tune,
)
from monitor.semantic.calibrate import LANGUAGES


def test_meaning_is_a_benchmark() -> None:
    assert "meaning" in available()


WEAKEST = ("uk", "pl", "ar", "tr")
"""Languages with a second batch of hard cases (two more positives, two more distractors a topic)."""


def test_every_language_has_its_articles_per_topic() -> None:
    articles = load_articles()
    assert len(articles) == 12 * (6 * 5 + 3) + 4 * (6 * 4 + 2)
    per = Counter((a.language, a.topic, a.kind) for a in articles)
    for lang in LANGUAGES:
        extra = lang in WEAKEST
        assert per[(lang, None, "other")] == (5 if extra else 3)
        for topic in TOPICS:
            assert (per[(lang, topic, "pos")], per[(lang, topic, "dis")]) == ((5, 4) if extra else (3, 2))
    titles = [a.title for a in articles]
    assert len(set(titles)) == len(titles), "a title appears twice"
    assert all(a.title.strip() and len(a.lead) > 40 for a in articles)
    assert sum(a.first_pass for a in articles) == 396


def test_the_split_takes_a_rotating_third_then_half_of_each_kind() -> None:
    articles = load_articles()
    dev = Counter((a.language, a.kind) for a in articles if a.dev)
    for lang in LANGUAGES:
        extra = 1 if lang in WEAKEST else 0
        assert (dev[(lang, "pos")], dev[(lang, "dis")], dev[(lang, "other")]) == (
            6 + 6 * extra,
            6 + 6 * extra,
            1 + extra,
        )
    first_is_dev = Counter(a.index == 0 for a in articles if a.dev and a.kind == "pos")
    assert first_is_dev[True] < first_is_dev[False]  # not always the first-written one
    later = [a for a in articles if not a.first_pass]
    assert sum(a.dev for a in later) * 2 == len(later)  # the later cases are half dev, half test


def test_every_description_is_written_in_its_language_and_translated_to_all() -> None:
    topics = load_topics()
    for name in TOPICS:
        topic = topics[name]
        assert set(topic["translations"]) == set(LANGUAGES)
        assert topic["translations"][topic["language"]] == topic["about"]
        assert topic["keywords"] and all(k == k.lower() for k in topic["keywords"])


def synthetic(seed: int = 3) -> tuple[Space, Labels]:
    """Two rules, 200 articles in two languages.

    cosine = 0.75 + 0.1 x relevant + 0.05 x same language + noise."""
    rng = np.random.default_rng(seed)
    n, dim = 200, 8
    truth = np.zeros((n, 2), dtype=bool)
    truth[rng.choice(n, 40, replace=False), 0] = True
    truth[rng.choice(n, 40, replace=False), 1] = True
    language = np.array(["en", "uk"] * (n // 2))
    rule_language = np.array(["en", "uk"])
    same = language[:, None] == rule_language[None, :]
    cosine = 0.75 + 0.1 * truth + 0.05 * same + rng.normal(0, 0.01, size=(n, 2))
    # rule vectors e0, e1; article rows carry the wanted cosines on those axes (not unit: fine here)
    rule_q = np.eye(2, dim)
    whole_p = np.zeros((n, dim))
    whole_p[:, :2] = cosine
    empty = np.zeros((0, dim))
    space = Space(
        whole_p, whole_p, empty, np.zeros(0, dtype=np.int64), rule_q, rule_q,
        np.zeros((2, 12, dim)), empty, empty, np.array([], dtype=str),
    )  # fmt: skip
    labels = Labels(truth, np.arange(n) % 2 == 0, language, rule_language, np.zeros((n, 2), dtype=bool))
    return space, labels


def test_tune_finds_the_threshold_that_balances_recall_and_precision() -> None:
    space, labels = synthetic()
    scores = space.whole_p @ space.rule_q.T - 0.05 * (
        labels.language[:, None] == labels.rule_language[None, :]
    )
    threshold = tune(scores, labels)
    recall, precision = rates(*counts(scores, labels, labels.dev, threshold))
    assert recall > 0.95 and precision > 0.95


def test_the_fitted_calibration_corrects_for_a_shared_language_and_centres_the_default() -> None:
    space, labels = synthetic()
    calibration = fit_calibration(space, labels, "synthetic")
    assert calibration.fitted and calibration.weight > 0
    # the correction is worth about the 0.05 of cosine the synthetic set adds
    assert calibration.same_language / calibration.weight == pytest.approx(-0.05, abs=0.015)
    scores = np.array(
        [
            [calibration.similarity(float(c), bool(s)) for c, s in zip(row, same, strict=True)]
            for row, same in zip(
                space.whole_p @ space.rule_q.T,
                labels.language[:, None] == labels.rule_language[None, :],
                strict=True,
            )
        ]
    )
    recall, precision = rates(*counts(scores, labels, ~labels.dev, 0.5))
    assert recall > 0.9 and precision > 0.9
    recall_at_03, _ = rates(*counts(scores, labels, labels.dev, 0.3))
    assert recall_at_03 >= 0.95


def test_rates_of_nothing_are_one() -> None:
    assert rates(0, 0, 0) == (1.0, 1.0)
    assert rates(3, 1, 1) == (0.75, 0.75)
    assert math.isclose(rates(1, 0, 3)[0], 0.25)


def test_tier_rows_are_named_for_bench_languages() -> None:
    row = TierRow("meaning", "uk", 7, 0, 5)
    assert row._fields == ("tier", "language", "tp", "fp", "fn")
    assert tuple(row) == ("meaning", "uk", 7, 0, 5)


def full_synthetic(seed: int = 5) -> tuple[Space, Labels]:
    """Every array a step reads, for the six rules and twelve languages (random, unit rows)."""
    rng = np.random.default_rng(seed)
    n, dim, r = 144, 16, len(TOPICS)
    topics = load_topics()

    def unit(*shape: int) -> np.ndarray:
        x = rng.normal(size=shape)
        rows: np.ndarray = x / np.linalg.norm(x, axis=-1, keepdims=True)
        return rows

    rule_q = unit(r, dim)
    truth = np.zeros((n, r), dtype=bool)
    truth[np.arange(n), np.arange(n) % r] = np.arange(n) % 4 == 0
    whole = unit(n, dim) * 0.5 + truth.astype(float) @ rule_q
    whole /= np.linalg.norm(whole, axis=1, keepdims=True)
    space = Space(
        whole_p=whole, whole_q=whole, sentences=np.vstack([whole, whole]),
        owner=np.concatenate([np.arange(n), np.arange(n)]), rule_q=rule_q, rule_p=rule_q,
        translations_q=np.repeat(rule_q[:, None, :], 12, axis=1), background_p=unit(24, dim),
        background_q=unit(24, dim), background_language=np.array(list(LANGUAGES) * 2),
    )  # fmt: skip
    labels = Labels(
        truth=truth,
        dev=np.arange(n) % 2 == 0,
        language=np.array([LANGUAGES[i % 12] for i in range(n)]),
        rule_language=np.array([topics[t]["language"] for t in TOPICS]),
        keyword=rng.random((n, r)) < 0.1,
    )
    return space, labels


def test_every_step_evaluates_and_the_table_prints_them() -> None:
    from bench.meaning import evaluate, shipped_summary, steps, table
    from monitor.semantic.calibrate import Bundle, LanguageGuide

    space, labels = full_synthetic()
    bundle = Bundle(fit_calibration(space, labels, "synthetic"), LanguageGuide())
    rows = [evaluate(step, space, labels) for step in steps(bundle, "synthetic")]
    assert len(rows) >= 10 and len({row["step"] for row in rows}) == len(rows)
    for row in rows:
        assert set(row["per_language"]) == set(LANGUAGES)
        assert 0 <= row["test"]["recall"] <= 1 and 0 <= row["test"]["precision"] <= 1
    shipped = next(row for row in rows if row["step"].startswith("calibrated: same-language"))
    assert shipped["threshold"] == 0.5 and not shipped["tuned_on_dev"]
    probe = {"cpu_ms_batch": 90.0, "wall_ms_batch": 100.0, "cpu_ms_single": 95.0, "wall_ms_single": 99.0}
    cost = {
        "one_thread": probe, "default_threads": probe, "tokens_per_article": 50.0,
        "chars_per_article": 180.0, "model_load_s": 0.1, "peak_rss_mb": 100.0,
        "model_rss_mb": {"model_and_batch": 110.0, "added": 80.0},
    }  # fmt: skip
    scores = np.asarray(labels.truth, dtype=np.float64)
    report = {
        "steps": rows,
        "cost": cost,
        "keyword_relief": {"shipped": 0.04, "best_on_dev": 0.0},
        "shipped": shipped_summary(scores, labels, np.ones(len(labels.dev), dtype=bool)),
        "min_similarity_sweep": [{"min_similarity": 0.5, "recall": 1.0, "precision": 1.0}],
    }
    text = table(report)
    assert all(row["step"] in text for row in rows)
    assert "ms/article" in text and "keyword relief" in text and "bootstrap interval" in text


def test_the_reservoir_is_bounded_per_language_and_its_state_is_plain_data() -> None:
    from bench._meaning_stream import Reservoir

    reservoir = Reservoir(size=3)
    for i in range(5):
        reservoir.add("uk", [float(i), 10.0 + i])
    reservoir.add("en", [1.0, 1.0])
    assert reservoir.state() == {"uk": [[2.0, 12.0], [3.0, 13.0], [4.0, 14.0]], "en": [[1.0, 1.0]]}
    assert list(reservoir.reference("uk", "mean", 2)) == [3.0, 13.0]
    assert list(reservoir.reference("uk", "median", 2)) == [3.0, 13.0]
    assert list(reservoir.reference("pl", "q90", 2)) == [0.0, 0.0]  # nothing seen yet


def test_stream_offsets_are_deterministic_and_score_each_article_before_it_joins() -> None:
    from bench._meaning_stream import stream_offsets

    space, labels = full_synthetic()
    first = stream_offsets(space, labels, filler=2)
    assert np.array_equal(first, stream_offsets(space, labels, filler=2))
    assert not np.array_equal(first, stream_offsets(space, labels, filler=2, seed=99))
    # with no generic seed and no filler, the first article of a language meets an empty reservoir
    bare = Space(
        **{
            **space.__dict__,
            "background_p": space.background_p[:0],
            "background_language": space.background_language[:0],
        }
    )
    offsets = stream_offsets(bare, labels, filler=0)
    order = np.random.default_rng(12).permutation(len(labels.dev))
    firsts = {str(labels.language[i]): int(i) for i in order[::-1]}
    cosine = space.whole_p @ space.rule_q.T
    for i in firsts.values():
        assert np.allclose(offsets[i], cosine[i])


def test_the_bootstrap_interval_brackets_the_rates() -> None:
    from bench._meaning_steps import interval

    space, labels = full_synthetic()
    scores = space.whole_p @ space.rule_q.T
    found = interval(scores, labels, ~labels.dev, 0.5, draws=200)
    recall, precision = rates(*counts(scores, labels, ~labels.dev, 0.5))
    assert found["recall"][0] <= recall <= found["recall"][1]
    assert found["precision"][0] <= precision <= found["precision"][1]
