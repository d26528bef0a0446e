"""``python -m bench languages`` runs, writes its JSON, and its labelled set keeps the
targets (each tier recall and precision at least 0.95): a regression floor for the
word forms and name keys, not a timing test."""

from __future__ import annotations

import io
import json
from pathlib import Path

from bench.languages import LabelledSet, Row, name_collisions, run, scores, table
from monitor.language import LANGUAGES


def test_the_labelled_set_covers_every_language_with_distractors() -> None:
    labelled = LabelledSet.load()
    assert {a.language for a in labelled.articles} == set(LANGUAGES)
    names = {r.name for rules in labelled.rules.values() for r in rules}
    assert all(a.expect <= names for a in labelled.articles)
    assert sum(1 for a in labelled.articles if not a.expect) >= 2 * len(LANGUAGES)


def test_bench_languages_meets_its_targets_and_writes_json(tmp_path: Path) -> None:
    out = io.StringIO()
    report = run(out=out, results=tmp_path, libraries=False, meaning=False)
    tiers = report["tiers"]
    assert isinstance(tiers, dict) and {"forms", "names"} <= set(tiers)
    for name in ("forms", "names"):
        assert tiers[name]["recall"] >= 0.95 and tiers[name]["precision"] >= 0.95, name
    written = json.loads((tmp_path / "languages.json").read_text(encoding="utf-8"))
    assert written["benchmark"] == "languages"
    assert {d["detector"] for d in written["detection"]} >= {"monitor"}
    assert "forms    ALL" in out.getvalue() or "forms  ALL" in out.getvalue()


def test_scores_table_and_collisions() -> None:
    rows = [Row("forms", "uk", 8, 0, 1), Row("forms", "de", 2, 1, 0)]
    assert scores(rows) == (10, 1, 1, 10 / 11, 10 / 11)
    assert scores([]) == (0, 0, 0, 1.0, 1.0)
    assert "forms  ALL       10  1   1" in table(rows)
    from collections import Counter

    found = name_collisions(
        Counter({"Frank": 3, "France": 2, "Зеленський": 1, "Zelenskyy": 1, "Budanov": 1, "Budanow": 1})
    )
    folded_all = found["met_latin_to_latin_if_all"]
    assert found["met_latin_to_latin"] == 1 and isinstance(folded_all, int) and folded_all >= 2
    assert "Зеленський ~ Zelenskyy" in found["pairs_across_scripts"]  # type: ignore[operator]
