"""Fit the story decision's logistic weights on the dev half of ECB+ (never on test).

``python -m bench stories -- --fit`` replays the dev split and collects, for every
article, its evidence against each candidate the assigner would score
(``monitor.stories.assign.SCORED`` by overlap, open and plausible), labelled by
whether the candidate's articles are mostly of the article's gold story. Two kinds of
replay are pooled: an *oracle* one, where each article then goes to its gold story
(clean stories), and *on-policy* ones, where it goes where the assigner with the
current weights puts it (the mixed stories the method really meets). The shipped
weights are the oracle fit (``rounds=0``): on-policy rounds were measured and made dev
worse (ADR 0014). They are printed to be copied into ``monitor/stories/decide.py``.

``cross_validated`` (``--cv``) is the held-out check inside dev: fit on the dev topics
1 mod 4 and replay those 3 mod 4, then the other way round. The replay of the whole dev
split with weights fitted on it is in-sample and flatters a change (ADR 0014).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from bench import _stories_eval as ev
from monitor.stories import (
    MemoryIndex,
    StoryArticle,
    StoryAssigner,
    WordfreqStats,
    add_article,
    extract,
    new_story,
)
from monitor.stories.assign import DEFAULT_CANDIDATES, SCORED
from monitor.stories.decide import WEIGHTS, evidence, overlap
from monitor.stories.index import query_terms
from monitor.stories.state import StoryState

Rows = tuple[list[tuple[float, ...]], list[bool]]


def _article(published: datetime | None, a: ev.Article) -> StoryArticle:
    return StoryArticle(a["id"], a["title"], a["body"], published, a["outlet"], a["lang"])


def collect(stream: ev.Stream, weights: Sequence[float] | None, window_days: float | None = None) -> Rows:
    """Evidence rows and labels from one replay (oracle when ``weights`` is None)."""
    window = timedelta(days=window_days or 365_000)
    stats = WordfreqStats()
    index = MemoryIndex()
    assigner = StoryAssigner(index, stats, window=window, weights=weights or WEIGHTS)
    members: dict[str, Counter[str]] = {}
    gold_state: dict[str, str] = {}
    xs: list[tuple[float, ...]] = []
    ys: list[bool] = []
    for published, a in stream:
        article = _article(published, a)
        sig = extract(article, stats)
        looks = [
            (-overlap(sig, s), s.id, s)
            for s in index.candidates(query_terms(sig), DEFAULT_CANDIDATES)
            if s.is_open(sig.published, assigner.window_s)
        ]
        for _, _, story in sorted(looks, key=lambda r: (r[0], r[1]))[:SCORED]:
            proof = evidence(sig, story)
            if proof.plausible():
                xs.append(proof.features())
                ys.append(members[story.id].most_common(1)[0][0] == a["story"])
        if weights is None:
            sid = gold_state.get(a["story"])
            known: StoryState | None = index.get(sid) if sid else None
            story = new_story(sig) if known is None else add_article(known, sig)
            index.put(story)
            gold_state[a["story"]] = story.id
        else:
            story = assigner.assign(article).story
        members.setdefault(story.id, Counter())[a["story"]] += 1
    return xs, ys


def fit(xs: Sequence[Sequence[float]], ys: Sequence[bool], l2: float = 1e-3, steps: int = 50) -> list[float]:
    """Logistic regression by Newton steps; intercept first (the WEIGHTS layout)."""
    x = np.hstack([np.ones((len(xs), 1)), np.asarray(xs, dtype=np.float64)])
    y = np.asarray(ys, dtype=np.float64)
    ridge = l2 * np.eye(x.shape[1])
    ridge[0, 0] = 0.0
    beta = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -60, 60)))
        gradient = x.T @ (p - y) / len(y) + ridge @ beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x / len(y) + ridge
        beta = beta - np.linalg.solve(hessian, gradient)
    return [round(float(b), 2) for b in beta]


def fitted(corp: ev.Corpus, rounds: int = 0) -> list[float]:
    """Oracle rows, then ``rounds`` of on-policy rows pooled in, refitting each time."""
    stream = ev.replay(corp, "dev")
    xs, ys = collect(stream, None)
    weights = fit(xs, ys)
    for _ in range(rounds):
        more_x, more_y = collect(stream, weights)
        xs, ys = xs + more_x, ys + more_y
        weights = fit(xs, ys)
    return weights


def _topics(corp: ev.Corpus, rest: int) -> ev.Corpus:
    """The dev articles of topics ``rest`` mod 4."""
    keep = [a for a in corp.articles if a["split"] == "dev" and int(a["topic"].lstrip("t")) % 4 == rest]
    return dataclasses.replace(corp, articles=keep)


def cross_validated(corp: ev.Corpus, threshold: float, window_days: float) -> list[dict[str, Any]]:
    """Scores of each held-out half of dev (weights fitted on the other half), for the
    window and without one, with ``split``, ``window`` and the weights used."""
    rows = []
    for fit_on, held_out in ((1, 3), (3, 1)):
        xs, ys = collect(ev.replay(_topics(corp, fit_on), "dev"), None)
        weights = fit(xs, ys)
        part = _topics(corp, held_out)
        stream = ev.replay(part, "dev")
        for days in (window_days, None):
            window = timedelta(days=days or 365_000)
            assigner = StoryAssigner(
                MemoryIndex(), WordfreqStats(), window=window, threshold=threshold, weights=weights
            )
            pred = {a["id"]: assigner.assign(_article(t, a)).story.id for t, a in stream}
            score = {**ev.score(pred, stream, part), **ev.rule_alerts(pred, stream, part)}
            rows.append({"held_out": f"topics {held_out} mod 4", "window": days, "weights": weights, **score})
    return rows
