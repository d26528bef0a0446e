"""What parsing costs, option by option and pool shape by pool shape (ADR 0019).

- ``options``: ``monitor.parse.parse`` on the same bodies with each combination of
  feedparser's ``sanitize_html`` (off: monitor stores its HTML through nh3 instead,
  ADR 0022) and ``resolve_relative_uris``: milliseconds per feed (the median of
  ``--passes`` passes), and how many entries come out different from feedparser's
  defaults (both on): in what rules and identity see (key, title, link, author, plain
  text) and in the stored HTML alone;
- ``pool``: ``--bodies`` bodies parsed from ``--threads`` threads (as poll threads do)
  in-process and through a ParsePool of 1, 2, 4 and 8 workers: seconds for all.

Bodies: the cycle benchmark's news feeds (``bench.news``, 50 items, 40-70 KB) and, when
``$MONITOR_CORPORA`` has it, every real feed of ``feeds/`` (180 documents of every kind).

``python -m bench parse_options [-- --feeds 100 --passes 3 --threads 32]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

from bench import news
from monitor import parse as parse_module
from monitor.errors import ParseError
from monitor.models import Entry, Fetched, ParsedFeed
from monitor.parse import parse
from monitor.parse_pool import ParsePool

RESULTS = Path(__file__).resolve().parent / "results"
NOW = datetime.now(UTC)


def news_bodies(feeds: int, items: int = 50, seed: int = 1) -> list[Fetched]:
    world = news.NewsWorld.make(seed)
    out = []
    for f in range(feeds):
        body = news.render_feed(f, news.initial_feed(world, f, items, NOW).items, NOW)
        out.append(_fetched(f"https://news.example/{f}.xml", body, "application/rss+xml; charset=utf-8"))
    return out


def corpus_bodies() -> list[Fetched]:
    folder = Path(os.environ.get("MONITOR_CORPORA", "")) / "feeds"
    manifest = folder / "manifest.json"
    if not os.environ.get("MONITOR_CORPORA") or not manifest.exists():
        return []
    out = []
    for entry in json.loads(manifest.read_text())["feeds"]:
        body = gzip.decompress((folder / "feeds" / f"{entry['id']}.gz").read_bytes())
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        out.append(_fetched(f"https://feeds.example.org/{entry['id']}", body, entry["content_type"]))
    return out


def _fetched(url: str, body: bytes, content_type: str) -> Fetched:
    return Fetched(url, url, 200, body, content_type, None, None, NOW)


def _parsed(fetched: Fetched) -> ParsedFeed | None:
    try:
        return parse(fetched)
    except ParseError:
        return None


def _seen(entry: Entry) -> tuple[object, ...]:
    """What rules, identity and alerts see of an entry."""
    return (entry.key, entry.title, entry.link, entry.author, entry.summary_text, entry.content_text)


def options(bodies: Sequence[Fetched], passes: int) -> list[dict[str, Any]]:
    """Each option combination: ms per feed, and entries that differ from the default."""
    saved = dict(parse_module.FEEDPARSER_OPTIONS)
    rows = []
    reference: list[ParsedFeed | None] = []
    try:
        for sanitize, resolve in product((True, False), repeat=2):
            parse_module.FEEDPARSER_OPTIONS.update(sanitize_html=sanitize, resolve_relative_uris=resolve)
            times = []
            for _ in range(passes):
                began = time.perf_counter()
                results = [_parsed(b) for b in bodies]
                times.append(time.perf_counter() - began)
            reference = reference or results
            rows.append(
                {
                    "sanitize_html": sanitize,
                    "resolve_relative_uris": resolve,
                    "ms_per_feed": 1000 * statistics.median(times) / len(bodies),
                    "ms_range": [1000 * min(times) / len(bodies), 1000 * max(times) / len(bodies)],
                    **_differences(reference, results),
                }
            )
    finally:
        parse_module.FEEDPARSER_OPTIONS.update(saved)
    return rows


def _differences(
    reference: Sequence[ParsedFeed | None], results: Sequence[ParsedFeed | None]
) -> dict[str, int]:
    seen = html = entries = 0
    for before, after in zip(reference, results, strict=True):
        if before is None or after is None:
            seen += int((before is None) != (after is None))
            continue
        entries += len(before.entries)
        if len(before.entries) != len(after.entries):
            seen += abs(len(before.entries) - len(after.entries))
            continue
        for a, b in zip(before.entries, after.entries, strict=True):
            seen += _seen(a) != _seen(b)
            html += (a.summary_html, a.content_html) != (b.summary_html, b.content_html)
    return {"entries": entries, "entries_seen_differently": seen, "entries_html_differs": html}


def pool_shapes(bodies: Sequence[Fetched], threads: int) -> list[dict[str, Any]]:
    """All bodies parsed from ``threads`` threads: in-process, then through pools."""
    rows = [{"workers": 0, "seconds": _threaded(parse, bodies, threads)}]
    for size in (1, 2, 4, 8):
        with ParsePool(timeout=60, size=size) as pool:
            pool.parse(bodies[0])  # its first worker is up
            rows.append({"workers": size, "seconds": _threaded(pool.parse, bodies, threads)})
    return rows


def _threaded(function: Callable[[Fetched], ParsedFeed], bodies: Sequence[Fetched], threads: int) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as executor:
        list(executor.map(function, bodies))
    return time.perf_counter() - began


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench parse_options", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--feeds", type=int, default=100, help="news feeds (50 items each)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args(argv)
    sets = {"news": news_bodies(args.feeds), "corpus": corpus_bodies()}
    report: dict[str, Any] = {
        "benchmark": "parse_options",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": list(os.getloadavg()),
        "options": {name: options(b, args.passes) for name, b in sets.items() if b},
        "pool": pool_shapes(sets["news"], args.threads),
    }
    for name, rows in report["options"].items():
        print(
            f"{name} ({len(sets[name])} bodies): sanitizer  resolve  ms/feed (range)  seen apart  html apart"
        )
        for r in rows:
            low, high = r["ms_range"]
            sanitizer = "feedparser" if r["sanitize_html"] else "nh3"
            print(
                f"  {sanitizer:>10} {r['resolve_relative_uris']!s:>7}  {r['ms_per_feed']:6.2f} "
                f"({low:.2f}-{high:.2f})  {r['entries_seen_differently']:>6} of {r['entries']:,}"
                f"  {r['entries_html_differs']:>6}"
            )
    print(f"pool shapes, {len(sets['news'])} bodies from {args.threads} threads:")
    for r in report["pool"]:
        label = "in-process" if r["workers"] == 0 else f"{r['workers']} workers"
        print(f"  {label:>10}: {r['seconds']:.2f}s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "parse_options.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'parse_options.json'}")
    return 0
