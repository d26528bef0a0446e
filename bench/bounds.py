"""Bounded config and rules: what a hostile pattern or file costs each way (ADR 0010).

1. Backtracking patterns on ``a`` x N + ``!``: Python's ``re`` (small N only: it doubles
   per character, so 40 is extrapolated), the ``regex`` module with a timeout (the
   alternative considered), and RE2 as monitor runs it (``monitor.query.pattern``).
2. Everyday patterns on the bundled VOA article (about 6 KB): microseconds per search,
   ``re`` against RE2 through its Python wrapper.
3. YAML: the time and the peak Python memory (tracemalloc) to read or refuse the
   shipped config, a 5,000-rule config, the alias bomb and a 5,000-deep list, with
   ruamel's plain round-trip loader (building plain data as the loader did before)
   and with ``monitor.config.bounded``.

Times are CPU seconds of this process (wall seconds for the ``regex`` timeouts), so
other work on a shared machine moves them less.

``python -m bench bounds [--quick]``; writes ``bench/results/bounds.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import re
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from ruamel.yaml import YAML

from monitor.config.bounded import Refused, bounded_yaml
from monitor.config.document import _plain
from monitor.query.pattern import compile_pattern
from monitor.samples import voa_article

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
BACKTRACKING = ["(a+)+$", "(a|aa)+$", "(x+x+)+y", "(a+)+b"]
EVERYDAY = [r"F-16s?", r"\bATACMS\b", r"K.iv", r"[Pp]risoner (exchange|swap)", r"\d{2,4} (prisoners|troops)"]
RULE = (
    '  - name: rule {i}\n    any: ["prisoner exchange {i}", "swap {i}"]\n    exclude: [opinion]\n'
    "    notify: [ops]\n"
)


def _seconds(run: Callable[[], object], repeat: int = 1) -> float:
    """CPU seconds per run: the machine is shared, so wall time would measure the others."""
    start = time.process_time()
    for _ in range(repeat):
        run()
    return (time.process_time() - start) / repeat


def backtracking(quick: bool) -> list[dict[str, Any]]:
    """Seconds per search of each engine; ``re`` measured up to 22 characters."""
    regex: Any = importlib.import_module("regex")  # the alternative considered (trafilatura needs it)

    rows = []
    for pattern in BACKTRACKING:
        subject = "x" if "x" in pattern else "a"
        small = [14, 16] if quick else [16, 18, 20, 22]
        grow = [_seconds(partial(re.search, pattern, subject * n + "!")) for n in small]
        factor = (grow[-1] / grow[0]) ** (1 / (small[-1] - small[0])) if grow[0] > 0 else float("nan")
        row: dict[str, Any] = {
            "pattern": pattern,
            "re_seconds_at": dict(zip(map(str, small), grow, strict=True)),
            "re_growth_per_character": factor,
            "re_seconds_at_40_extrapolated": grow[-1] * factor ** (40 - small[-1]),
        }
        compiled = compile_pattern(pattern, case_sensitive=False)
        for n in (40, 100_000):
            text = subject * (n - 1) + "!"
            row[f"re2_seconds_{n}"] = _seconds(partial(compiled.spans, text))
            row[f"regex_{n}"] = _timed_out(regex, pattern, text, 0.2)
        rows.append(row)
    return rows


def _timed_out(regex: Any, pattern: str, text: str, limit: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        regex.search(pattern, text, timeout=limit)
        outcome = "returned"
    except TimeoutError:
        outcome = f"timed out ({limit}s limit)"
    return {"outcome": outcome, "seconds": time.perf_counter() - start}


def everyday(quick: bool) -> list[dict[str, Any]]:
    """Microseconds per search over the VOA article's text, ``re`` and RE2."""
    article = voa_article()
    text = "\n".join(article.paragraphs)
    repeat = 50 if quick else 500
    rows = []
    for pattern in EVERYDAY:
        python = re.compile(pattern, re.IGNORECASE)
        ours = compile_pattern(pattern, case_sensitive=False)
        assert [m.span() for m in python.finditer(text)] == ours.spans(text), pattern
        rows.append(
            {
                "pattern": pattern,
                "characters": len(text),
                "re_us": _seconds(partial(_all, python, text), repeat) * 1e6,
                "re2_us": _seconds(partial(ours.spans, text), repeat) * 1e6,
            }
        )
    return rows


def _all(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    return list(pattern.finditer(text))


def _plain_load(text: str) -> object:
    return _plain(YAML(typ="rt").load(text))


def _bounded_load(text: str) -> object:
    try:
        return _plain(bounded_yaml().load(text))
    except Refused as e:
        return f"refused at {e.line}:{e.column}: {e.message}"


def yaml_cases(quick: bool) -> list[dict[str, Any]]:
    """Seconds and peak MiB (tracemalloc) per loader; the old one skipped where it runs away."""
    bomb = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
    )
    rules = 200 if quick else 5_000
    cases = {
        "shipped config.yaml": ((ROOT / "config.yaml").read_text(encoding="utf-8"), True),
        f"{rules:,} rules": (
            "channels: {ops: 'json://127.0.0.1/x'}\nrules:\n"
            + "".join(RULE.format(i=i) for i in range(rules)),
            True,
        ),
        "alias bomb (9 levels of 9)": (bomb, False),
        "a list 5,000 deep": ("feeds: " + "[" * 5000 + "]" * 5000 + "\n", False),
    }
    rows = []
    for name, (text, old_finishes) in cases.items():
        row: dict[str, Any] = {"case": name, "bytes": len(text.encode("utf-8"))}
        for label, loader in (("plain", _plain_load), ("bounded", _bounded_load)):
            if label == "plain" and not old_finishes:
                row[label] = "not run: expands without bound" if "bomb" in name else "not run: RecursionError"
                continue
            seconds = min(_seconds(partial(loader, text)) for _ in range(1 if quick else 3))
            tracemalloc.start()
            outcome = loader(text)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            shown = outcome if isinstance(outcome, str) else "read"
            row[label] = {"seconds": seconds, "peak_mib": peak / 2**20, "outcome": shown}
        rows.append(row)
    return rows


def report(result: dict[str, Any], out: TextIO) -> None:
    """The three tables."""
    print("Backtracking patterns on 'a' x N + '!' (seconds per search)", file=out)
    print(f"{'pattern':<12} {'re at 22':>9} {'re x/char':>9} {'re at 40 (extrap.)':>19} "
          f"{'regex 40':>22} {'RE2 40':>9} {'RE2 100k':>9}", file=out)  # fmt: skip
    for r in result["backtracking"]:
        last = list(r["re_seconds_at"].values())[-1]
        regex40 = f"{r['regex_40']['outcome'][:9]} {r['regex_40']['seconds']:.2f}s"
        print(f"{r['pattern']:<12} {last:>9.3f} {r['re_growth_per_character']:>9.2f} "
              f"{r['re_seconds_at_40_extrapolated']:>19.3g} {regex40:>22} {r['re2_seconds_40']:>9.6f} "
              f"{r['re2_seconds_100000']:>9.4f}", file=out)  # fmt: skip
    print("\nEveryday patterns on the VOA article (microseconds per search)", file=out)
    print(f"{'pattern':<30} {'re':>8} {'RE2':>8}", file=out)
    for r in result["everyday"]:
        print(f"{r['pattern']:<30} {r['re_us']:>8.1f} {r['re2_us']:>8.1f}", file=out)
    print("\nYAML: read or refuse (seconds, peak MiB)", file=out)
    for r in result["yaml"]:
        cells = []
        for label in ("plain", "bounded"):
            cell = r[label]
            cells.append(
                cell if isinstance(cell, str) else f"{cell['seconds']:.3f}s {cell['peak_mib']:.1f}MiB"
            )
        print(f"{r['case']:<28} {r['bytes']:>9,} B  plain: {cells[0]:<34} bounded: {cells[1]}", file=out)
        outcome = r["bounded"]["outcome"]
        if outcome != "read":
            print(f"{'':<28} {outcome}", file=out)


def run(*, quick: bool = False, out: TextIO = sys.stdout, results: Path = RESULTS) -> dict[str, Any]:
    """Measure, print the tables, write ``results/bounds.json``; returns the report."""
    result = {
        "benchmark": "bounds",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "backtracking": backtracking(quick),
        "everyday": everyday(quick),
        "yaml": yaml_cases(quick),
    }
    report(result, out)
    results.mkdir(parents=True, exist_ok=True)
    (results / "bounds.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench bounds [--quick]``."""
    parser = argparse.ArgumentParser(prog="python -m bench bounds")
    parser.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    args = parser.parse_args(argv)
    run(quick=args.quick)
    return 0
