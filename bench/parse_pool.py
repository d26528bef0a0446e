"""Parsing in worker processes (``monitor.parse_pool``) against parsing in the poll thread.

What a poll pays for the time limit on parsing (ADR 0008):

- ``sequential``: one thread parses the same feed N times, in-process and through a
  warm worker: the per-parse overhead (pickling the body out and the ParsedFeed back,
  two pipe round trips);
- ``threads``: 8 threads parse at once (as ``poll.concurrency`` = 8 does), in-process
  (one GIL) and through a pool of 8 workers (one process each);
- ``first parse``: a new pool's first parse, which starts its worker (what each App
  pays once, and what a killed worker's replacement costs); the fork server itself
  starts once per process, on the very first pool.

Feeds are synthetic RSS 2.0 built with ``monitor.samples``: a 60 KB feed (40 items with
teaser and HTML body, like a news site's) and a 1 MB one (600 items).

``python -m bench parse_pool [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.models import Fetched, ParsedFeed
from monitor.parse import parse
from monitor.parse_pool import ParsePool
from monitor.samples import rss_feed, rss_item

RESULTS = Path(__file__).resolve().parent / "results"
NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    feed_kb: int
    parses: int
    in_process_ms: float
    pool_ms: float

    @property
    def overhead_ms(self) -> float:
        return self.pool_ms - self.in_process_ms


def feed(items: int) -> Fetched:
    body = rss_feed(
        "World Desk",
        "https://news.example.com/",
        [
            rss_item(
                f"Story {i} about Kharkiv and ATACMS",
                f"https://news.example.com/a/{i}",
                NOW - timedelta(minutes=i),
                "Teaser text " * 20,
                "<p>" + "Body paragraph with words. " * 40 + "</p>",
            )
            for i in range(items)
        ],
    )
    url = "https://news.example.com/rss"
    return Fetched(url, url, 200, body, "application/rss+xml", None, None, NOW)


def per_parse_ms(
    parser: Callable[[Fetched], ParsedFeed], fetched: Fetched, runs: int, threads: int = 1
) -> float:
    """Wall time per parse, ``runs`` parses spread over ``threads`` threads."""
    started = time.perf_counter()
    if threads == 1:
        for _ in range(runs):
            parser(fetched)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _: parser(fetched), range(runs)))
    return (time.perf_counter() - started) * 1000 / runs


def first_parse_ms(fetched: Fetched, repeats: int = 20) -> tuple[float, float]:
    """(in-process first parse, a fresh pool's first parse) in ms, averaged."""
    pool_total = 0.0
    for _ in range(repeats):
        with ParsePool(timeout=20, size=1) as pool:
            started = time.perf_counter()
            pool.parse(fetched)
            pool_total += time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(repeats):
        parse(fetched)
    return (time.perf_counter() - started) * 1000 / repeats, pool_total * 1000 / repeats


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench parse_pool")
    parser.add_argument("--runs", type=int, default=200, help="parses per measurement (default 200)")
    args = parser.parse_args(list(argv))
    small, large = feed(40), feed(600)

    started = time.perf_counter()
    with ParsePool(timeout=20, size=1) as warmup:
        warmup.parse(small)
    server_ms = (time.perf_counter() - started) * 1000

    rows: list[Row] = []
    with ParsePool(timeout=60, size=8) as pool:
        pool.parse(small)  # a warm worker
        for fetched, runs in ((small, args.runs), (large, max(10, args.runs // 10))):
            kb = len(fetched.body) // 1024
            rows.append(
                Row(
                    "sequential",
                    kb,
                    runs,
                    per_parse_ms(parse, fetched, runs),
                    per_parse_ms(pool.parse, fetched, runs),
                )
            )
        for threads in (8,):
            runs = args.runs
            inproc = per_parse_ms(parse, small, runs, threads)
            pooled = per_parse_ms(pool.parse, small, runs, threads)
            rows.append(Row(f"{threads} threads", len(small.body) // 1024, runs, inproc, pooled))
    inproc_first, pool_first = first_parse_ms(small)
    rows.append(Row("first parse", len(small.body) // 1024, 20, inproc_first, pool_first))

    print(f"fork server + first worker + first parse: {server_ms:.0f} ms (once per process)")
    print(f"{'case':<12} {'feed':>7} {'parses':>7} {'in-process':>11} {'pool':>9} {'overhead':>9}")
    for r in rows:
        print(
            f"{r.case:<12} {r.feed_kb:>5}KB {r.parses:>7} {r.in_process_ms:>9.2f}ms {r.pool_ms:>7.2f}ms"
            f" {r.overhead_ms:>+7.2f}ms"
        )
    RESULTS.mkdir(exist_ok=True)
    report = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "fork_server_first_parse_ms": round(server_ms, 1),
        "rows": [asdict(r) | {"overhead_ms": round(r.overhead_ms, 3)} for r in rows],
    }
    (RESULTS / "parse_pool.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
