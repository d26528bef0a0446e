"""The benchmark harness runs (on tiny sizes: timing itself belongs to ``make bench``)
and produces its table and its JSON report."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
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


def test_cycle_benchmark_prints_its_table_and_writes_json(tmp_path: Path) -> None:
    """Five feeds of five items, ten rules, no latency; no reader venv, no PostgreSQL, no
    daemon (those need the network or minutes): the table and every ratio key appear."""
    out = tmp_path / "results.json"
    args = [
        "--feeds",
        "5",
        "--items",
        "5",
        "--rules",
        "10",
        "--latency",
        "0",
        "--concurrency",
        "4",
        "--runs",
        "3",
    ]
    args += ["--no-reader", "--no-postgres", "--no-daemon", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "cycle", "--", *args],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    labels = ("monitor cold cycle", "monitor warm cycle", "raw httpx conditional GET", "naive loop")
    for label in (*labels, "monitor dynamic bodies", "spread (min-max)", "3 runs of each"):
        assert label in done.stdout
    for ratio in (
        "warm_vs_naive",
        "warm_vs_raw_http",
        "cold_vs_reader",
        "cold_vs_parse_only",
        "cold_vs_raw_http",
    ):
        assert ratio in done.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["feeds"] == 5 and report["rules"] == 10
    ratios = report["ratios"]
    assert set(ratios) >= {
        "warm_vs_naive",
        "warm_vs_raw_http",
        "cold_vs_reader",
        "cold_vs_parse_only",
        "two_vs_one_instance",
        "cold_vs_raw_http",
        "dynamic_vs_reader",
    }
    assert ratios["warm_vs_naive"] > 0 and ratios["cold_vs_parse_only"] > 0 and ratios["cold_vs_raw_http"] > 0
    spreads = report["spreads"]
    assert set(spreads) == set(ratios)
    for name, value in ratios.items():  # a spread holds its median, or neither was measured
        assert (spreads[name] is None) == (value is None), name
        assert value is None or spreads[name][0] <= value <= spreads[name][1], name
    assert (
        len(report["timings_runs_s"]["monitor_cold"]) == 3
        and len(report["ratio_runs"]["cold_vs_raw_http"]) == 3
    )
    assert ratios["dynamic_vs_reader"] is None and "--no-reader" in report["ratio_notes"]["dynamic_vs_reader"]
    dynamic = report["details"]["monitor_dynamic_runs"]
    assert len(dynamic) == 3 and all(d["statuses"] == {"ok": 5} for d in dynamic)
    assert [d["new"] for d in dynamic] == [1, 1, 1] and all(d["skipped"] >= 20 for d in dynamic)
    assert ratios["cold_vs_reader"] is None and "--no-reader" in report["ratio_notes"]["cold_vs_reader"]
    assert report["peak_rss_mb"] is None and report["latency_p95_s"] is None
    cold = report["details"]["monitor_cold"]
    assert cold["statuses"] == {"ok": 5} and cold["new"] == 25
    assert cold["main_process_cpu_s"] >= 0 and cold["parse_workers_cpu_s"] >= 0
    assert report["details"]["monitor_warm"]["statuses"] == {"not_modified": 5}
    assert report["details"]["monitor_warm_changed"]["statuses"] == {"ok": 1, "not_modified": 4}
    assert report["details"]["raw_http"]["warm_statuses"] == {"304": 5}


def test_delivery_benchmark_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    from bench.delivery import run as run_delivery

    out = io.StringIO()
    rows = run_delivery(5, None, out, tmp_path)
    cases = ["one claim (before)", "claims of 4 (now)", "claims of 4 + quota", "digest"]
    assert [r.case for r in rows][:4] == cases
    assert all(r.ms_per_message > 0 for r in rows)
    assert "ms/message" in out.getvalue()
    report = json.loads((tmp_path / "delivery.json").read_text(encoding="utf-8"))
    assert report["benchmark"] == "delivery" and len(report["rows"]) == 5
