"""Story assignment on real news (ECB+), beside the published baselines, and its speed.

``python -m bench stories [--split test|dev|all] [--window 7] [--threshold T]
[--throughput N] [--quick]`` replays the split (default: test) through
``monitor.stories.StoryAssigner`` in publication order (``bench/_stories_eval.py``
says how undated articles are placed), scores it with pairwise and B-cubed P/R/F1
and the share of sibling stories merged, counts the alerts of the corpus's 121
keyword rules with one alert per (rule, story), and prints the baselines (a), (c),
(d) measured the same way. Rows are given with the 7-day window (the default) and
without one, because 17 of the corpus's dated stories have gaps of more than 7 days
between reports, which a 7-day window must split. The throughput scenario fills a
MemoryIndex with N synthetic articles (default 100,000) and times assigning more.
Tune on ``--split dev``; the test split is for the report. Writes
``bench/results/stories.json`` (``stories-dev.json`` for dev).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import _stories_eval as ev
from bench._stories_speed import throughput
from bench.corpora import corpus
from monitor.stories import DEFAULT_THRESHOLD, MemoryIndex, StoryArticle, StoryAssigner, WordfreqStats

RESULTS = Path(__file__).resolve().parent / "results"
_COLUMNS = ("pw_p", "pw_r", "pw_f1", "b3_p", "b3_r", "b3_f1")


def assign_stream(stream: ev.Stream, *, window_days: float | None, threshold: float) -> ev.Prediction:
    """Replay through the real assigner: article id -> story id."""
    window = timedelta(days=window_days) if window_days else timedelta(days=365_000)
    assigner = StoryAssigner(MemoryIndex(), WordfreqStats(), window=window, threshold=threshold)
    pred: ev.Prediction = {}
    for published, a in stream:
        article = StoryArticle(a["id"], a["title"], a["body"], published, a["outlet"], a["lang"])
        pred[a["id"]] = assigner.assign(article).story.id
    return pred


def evaluate(name: str, pred: ev.Prediction, stream: ev.Stream, corp: ev.Corpus) -> dict[str, Any]:
    """One row: clustering scores and rule alerts."""
    return {"name": name, **ev.score(pred, stream, corp), **ev.rule_alerts(pred, stream, corp)}


def table(rows: Sequence[dict[str, Any]], out: Any = sys.stdout) -> None:
    """The rows as a Markdown table."""
    head = (
        "| grouping | pw P | pw R | pw F1 | B3 P | B3 R | B3 F1 | groups | siblings merged"
        " | alerts/ideal | own alert |"
    )
    print(head, file=out)
    print("|---" * (head.count("|") - 1) + "|", file=out)
    for r in rows:
        cells = " | ".join(f"{r[c]:.3f}" for c in _COLUMNS)
        merged = f"{r['sibling_merged']}/{r['sibling_pairs']} ({r['sibling_merged_share']:.1%})"
        print(
            f"| {r['name']} | {cells} | {r['groups']} | {merged} | {r['alerts']}/{r['ideal']}"
            f" = {r['alerts_per_ideal']:.2f} | {r['own_alert_share']:.1%} |",
            file=out,
        )


def run(split: str, threshold: float, window: float, baselines: bool) -> list[dict[str, Any]]:
    """Every row for one split."""
    corp = ev.load(corpus("stories"))
    stream = ev.replay(corp, split)
    rows = []
    for name, days in (
        (f"monitor.stories, {window:g}-day window", window),
        ("monitor.stories, no window", None),
    ):
        rows.append(
            evaluate(name, assign_stream(stream, window_days=days, threshold=threshold), stream, corp)
        )
    if baselines:
        rows += [evaluate(name, method(stream), stream, corp) for name, method in ev.BASELINES.items()]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench stories")
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--window", type=float, default=7.0, help="days (the first row)")
    parser.add_argument("--throughput", type=int, default=100_000, help="articles in the index (0: skip)")
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args(list(argv or []))
    rows = run(args.split, args.threshold, args.window, not args.no_baselines)
    print(f"\nstories ({args.split} split, threshold {args.threshold}):\n")
    table(rows)
    speed = throughput(args.throughput) if args.throughput else None
    if speed:
        print(
            f"\nthroughput: index of {speed['indexed']:,} articles ({speed['stories']:,} stories), "
            f"{speed['assign_per_s']:,.0f} articles/s assigned per CPU-second of one core "
            f"({speed['assign_per_wall_s']:,.0f}/s wall clock on this shared machine), "
            f"index {speed['index_mib']:.0f} MiB, at most {speed['max_candidates']} candidates an article"
        )
    RESULTS.mkdir(exist_ok=True)
    name = "stories.json" if args.split == "test" else f"stories-{args.split}.json"
    payload = {"split": args.split, "threshold": args.threshold, "rows": rows, "throughput": speed}
    (RESULTS / name).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0
