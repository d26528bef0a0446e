"""The benchmark harness runs (on tiny sizes: timing itself belongs to ``make bench``)
and produces its table and its JSON report."""

from __future__ import annotations

import io
import json
from pathlib import Path

from bench.__main__ import available
from bench.__main__ import main as bench_main
from bench.matching import run


def test_matching_benchmark_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    out = io.StringIO()
    run(articles=30, vocab_size=3_000, sizes=(3, 30), naive_sample=5, out=out, results=tmp_path)
    lines = out.getvalue().splitlines()
    header = next(i for i, line in enumerate(lines) if "engine articles/s" in line)
    assert "naive regex articles/s" in lines[header] and "speed-up" in lines[header]
    assert [line.split()[0] for line in lines[header + 1 : header + 3]] == ["3", "30"]
    report = json.loads((tmp_path / "matching.json").read_text(encoding="utf-8"))
    assert report["benchmark"] == "matching" and report["corpus"]["articles"] == 30
    rows = report["rows"]
    assert [r["rules"] for r in rows] == [3, 30]
    for row in rows:
        assert row["articles_per_s"] > 0 and row["naive_articles_per_s"] > 0 and row["naive_articles"] == 5
        assert row["speedup"] > 0


def test_bench_entry_point_knows_its_benchmarks() -> None:
    assert "matching" in available()
    assert bench_main(["no-such-benchmark"]) == 2
