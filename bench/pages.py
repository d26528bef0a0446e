"""Full text quality on 609 real article pages: monitor's extraction against trafilatura's.

The corpus (``../shared/corpora/pages``, README there) gives each page a phrase of its
main text (``with``) and one of its boilerplate (``without``). For each extractor:

- recall: the share of pages whose text contains the ``with`` phrase (a rule on a word
  of the article would fire);
- false alerts: the share whose text contains the ``without`` phrase (a rule on a word
  of the site's furniture would fire);

compared case-insensitively with whitespace collapsed, on all pages and on each half:
monitor's parameters were tuned on the even ids and checked on the odd ones (ADR 0011).
Every extractor runs in worker processes (``monitor.workers``), so a native crash in
trafilatura is counted, not fatal; ms per page is measured inside the worker.

Extractors: trafilatura ``extract()`` with default settings; its precision mode as the
corpus README states it (``favor_precision=True, include_tables=False``); monitor's
``extract.extract_page`` (both, merged).

``python -m bench pages [-- --limit N --workers 2 --timeout 60]``; writes
``bench/results/pages.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trafilatura

from bench.corpora import corpus
from monitor.extract import Page, extract_page
from monitor.workers import WorkerPool, WorkFailed

RESULTS = Path(__file__).resolve().parent / "results"


def reference_default(page: Page) -> tuple[str, float]:
    started = time.perf_counter()
    text = trafilatura.extract(page.body, url=page.url) or ""
    return text, (time.perf_counter() - started) * 1000


def reference_precision(page: Page) -> tuple[str, float]:
    started = time.perf_counter()
    text = trafilatura.extract(page.body, url=page.url, favor_precision=True, include_tables=False) or ""
    return text, (time.perf_counter() - started) * 1000


def monitor_text(page: Page) -> tuple[str, float]:
    started = time.perf_counter()
    text = extract_page(page)
    return text, (time.perf_counter() - started) * 1000


EXTRACTORS: dict[str, tuple[str, Callable[[Page], tuple[str, float]]]] = {
    "default": ("trafilatura extract(), default settings", reference_default),
    "precision": ("trafilatura favor_precision, no tables", reference_precision),
    "monitor": ("monitor (precision + default, merged)", monitor_text),
}


@dataclass(frozen=True, slots=True)
class Labelled:
    id: str
    url: str
    with_: str
    without: str


@dataclass(frozen=True, slots=True)
class Score:
    pages: int
    recall: float
    false_alerts: float


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    label: str
    all: Score
    even: Score
    odd: Score
    ms_per_page: float
    crashes: int
    timeouts: int
    failures: list[str]


def _flat(text: str) -> str:
    return " ".join(text.split()).casefold()


def labelled(folder: Path, limit: int | None) -> list[Labelled]:
    pages = json.loads((folder / "expectations.json").read_text(encoding="utf-8"))["pages"]
    chosen = [Labelled(p["id"], p["url"], p["with"], p["without"]) for p in pages]
    return chosen[:limit] if limit else chosen


def score(pages: Sequence[Labelled], texts: dict[str, str]) -> Score:
    flat = {p.id: _flat(texts.get(p.id, "")) for p in pages}
    found = sum(_flat(p.with_) in flat[p.id] for p in pages)
    alerts = sum(_flat(p.without) in flat[p.id] for p in pages)
    n = max(1, len(pages))
    return Score(len(pages), round(found / n, 3), round(alerts / n, 3))


def measure(
    name: str, folder: Path, pages: Sequence[Labelled], workers: int, timeout: float
) -> tuple[Row, dict[str, str]]:
    """Every page through ``workers`` processes running extractor ``name``."""
    label, function = EXTRACTORS[name]
    texts: dict[str, str] = {}
    times: list[float] = []
    failures: list[str] = []
    pool: WorkerPool[Page, tuple[str, float]] = WorkerPool(
        function, timeout=timeout, size=workers, prefix="extract", noun="extractor"
    )

    def one(p: Labelled) -> None:
        body = gzip.decompress((folder / "pages" / f"{p.id}.html.gz").read_bytes())
        try:
            text, ms = pool.run(Page(p.url, body))
        except WorkFailed as e:
            failures.append(f"{p.id}: {e}")
            return
        texts[p.id] = text
        times.append(ms)

    with pool, ThreadPoolExecutor(workers) as threads:
        list(threads.map(one, pages))
    even = [p for p in pages if int(p.id) % 2 == 0]
    odd = [p for p in pages if int(p.id) % 2 == 1]
    row = Row(
        name=name,
        label=label,
        all=score(pages, texts),
        even=score(even, texts),
        odd=score(odd, texts),
        ms_per_page=round(sum(times) / max(1, len(times)), 1),
        crashes=sum("process died" in f for f in failures),
        timeouts=sum("took longer" in f for f in failures),
        failures=failures,
    )
    return row, texts


def table(rows: Sequence[Row]) -> str:
    head = ("extractor", "recall", "false alerts", "even r / f", "odd r / f", "ms/page", "crashes")
    lines = [head]
    for r in rows:
        lines.append(
            (
                r.label,
                f"{r.all.recall:.3f}",
                f"{r.all.false_alerts:.3f}",
                f"{r.even.recall:.3f} / {r.even.false_alerts:.3f}",
                f"{r.odd.recall:.3f} / {r.odd.false_alerts:.3f}",
                f"{r.ms_per_page:.0f}",
                f"{r.crashes}" + (f" (+{r.timeouts} timeouts)" if r.timeouts else ""),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run(args: argparse.Namespace, out: Any = sys.stdout) -> dict[str, Any]:
    folder = corpus("pages")
    pages = labelled(folder, args.limit)
    print(
        f"pages: {len(pages)} real pages, {args.workers} worker processes, {args.timeout:g}s each", file=out
    )
    rows = []
    for name in args.extractors:
        row, _ = measure(name, folder, pages, args.workers, args.timeout)
        print(f"  {row.label}: {row.all.recall:.3f} / {row.all.false_alerts:.3f}", file=out, flush=True)
        rows.append(row)
    print("", file=out)
    print(table(rows), file=out)
    report = {
        "benchmark": "pages",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "trafilatura": trafilatura.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": list(os.getloadavg()),
        "pages": len(pages),
        "tuned_on": "even ids; odd ids held out",
        "rows": [asdict(r) for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=out)
    return report


def main(argv: Sequence[str]) -> int:
    """Command line of this benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench pages", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages")
    parser.add_argument("--workers", type=int, default=2, help="extraction processes")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page")
    parser.add_argument("--extractors", nargs="+", choices=list(EXTRACTORS), default=list(EXTRACTORS))
    parser.add_argument("--out", type=Path, default=RESULTS / "pages.json")
    run(parser.parse_args(argv))
    return 0
