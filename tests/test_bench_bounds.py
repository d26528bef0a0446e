"""The bounds benchmark runs on small sizes and writes its report (timing itself belongs
to ``make bench``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from bench.bounds import run


def test_bounds_benchmark_prints_its_tables_and_writes_json(tmp_path: Path) -> None:
    out = io.StringIO()
    run(quick=True, out=out, results=tmp_path)
    text = out.getvalue()
    for title in ("Backtracking patterns", "Everyday patterns", "YAML: read or refuse"):
        assert title in text
    report = json.loads((tmp_path / "bounds.json").read_text(encoding="utf-8"))
    assert report["benchmark"] == "bounds"
    assert [r["pattern"] for r in report["backtracking"]] == ["(a+)+$", "(a|aa)+$", "(x+x+)+y", "(a+)+b"]
    bomb = next(r for r in report["yaml"] if r["case"].startswith("alias bomb"))
    assert bomb["bounded"]["outcome"].startswith("refused at 6:10: aliases expand")
