"""Rules across languages: recall and precision per tier and per language, on a
labelled set of short news articles in 12 languages (``bench/data/languages.yaml``).

- ``forms``: phrases matched with the word forms of their language (``обмін
  полоненими`` finds ``обміну полоненими``; ``Gefangenenaustausch`` finds
  ``Gefangenenaustausches``), beside distractors that share a word but not the event
  (``обмін досвідом``, a ``Schüleraustausch``, an ``exchange of fire``).
- ``names``: names across scripts and spellings, through ``aliases:`` and through
  transliteration folding (``Zelensky`` finds ``Зеленського`` and ``Selenskyjs``,
  ``ATACMS`` finds ``АТАКМС``), beside false friends (Rome's ``ATAC``, ``Zieliński``,
  ``Olena Zelenska``, Zelensky at a football match for a rule on prisoner exchanges).
- ``meaning``: from ``bench.meaning.tier()`` when that module exists.

Every rule runs on every article, so each article is a distractor for the rules it
does not list. A tier is a function returning rows (tier, language, tp, fp, fn).
Also measured: language detection (ours beside py3langid and lingua when they are
installed: accuracy on the set, microseconds per article), the word-form analysers
per language (``--analysers``), and name keys on real feeds (``--feeds``): which
distinct words of real text a capitalised rule word would meet only through its
name key, for a person to judge.

``python -m bench languages [--analysers] [--feeds]``
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ruamel.yaml import YAML

from bench.corpora import corpus
from monitor.config import WatchRule
from monitor.language import LANGUAGES, detect, fold, forms, name_key, names
from monitor.match import Matcher
from monitor.models import Entry
from monitor.query import normalize

DATA = Path(__file__).resolve().parent / "data" / "languages.yaml"
RESULTS = Path(__file__).resolve().parent / "results"
TIERS = ("forms", "names")
_NOW = datetime(2024, 5, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Row:
    """Counts of one tier on the articles of one language."""

    tier: str
    language: str
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True, slots=True)
class Article:
    """One labelled article."""

    language: str
    title: str
    text: str
    expect: frozenset[str]

    def entry(self, key: str) -> Entry:
        """The article as a feed entry."""
        return Entry(key, self.title, None, None, _NOW, self.text, self.text, "", "")


@dataclass(frozen=True)
class LabelledSet:
    """The rules of each tier, the aliases and the articles."""

    rules: dict[str, list[WatchRule]]
    aliases: dict[str, list[str]]
    articles: list[Article]

    @classmethod
    def load(cls, path: Path = DATA) -> LabelledSet:
        """Read the YAML file of the set."""
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        rules = {
            tier: [WatchRule.model_validate({**r, "notify": ["c"]}) for r in found]
            for tier, found in data["rules"].items()
        }
        articles = [
            Article(a["lang"], a["title"], a["text"], frozenset(a.get("expect") or ()))
            for a in data["articles"]
        ]
        return cls(rules, data.get("aliases") or {}, articles)


def tier(name: str, labelled: LabelledSet) -> list[Row]:
    """Rows of one tier: its rules on every article, per article language."""
    rules = labelled.rules[name]
    matcher = Matcher(rules, aliases=labelled.aliases)
    counts: dict[str, Counter[str]] = {}
    for i, article in enumerate(labelled.articles):
        found = {m.rule for m in matcher.match(article.entry(f"a{i}"), "")}
        count = counts.setdefault(article.language, Counter())
        for rule in rules:
            wanted = rule.name in article.expect
            got = rule.name in found
            count["tp"] += wanted and got
            count["fp"] += got and not wanted
            count["fn"] += wanted and not got
    return [Row(name, lang, c["tp"], c["fp"], c["fn"]) for lang, c in sorted(counts.items())]


def forms_tier(labelled: LabelledSet) -> list[Row]:
    """Word forms per language."""
    return tier("forms", labelled)


def names_tier(labelled: LabelledSet) -> list[Row]:
    """Names across scripts and spellings."""
    return tier("names", labelled)


def meaning_tier() -> list[Row]:
    """The ``about`` tier of ``bench.meaning`` (rows of the same shape), if it exists."""
    try:
        module = importlib.import_module("bench.meaning")
    except ImportError:
        return []
    found: Callable[[], Iterable[Any]] | None = getattr(module, "tier", None)
    if found is None:
        return []
    return [r if isinstance(r, Row) else Row(*r) for r in found()]


def scores(rows: Iterable[Row]) -> tuple[int, int, int, float, float]:
    """(tp, fp, fn, recall, precision) of some rows together."""
    tp = fp = fn = 0
    for row in rows:
        tp, fp, fn = tp + row.tp, fp + row.fp, fn + row.fn
    recall = tp / (tp + fn) if tp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    return tp, fp, fn, recall, precision


def table(rows: Sequence[Row]) -> str:
    """Recall and precision per tier, and per language within it."""
    lines = [("tier", "language", "tp", "fp", "fn", "recall", "precision")]
    for name in dict.fromkeys(r.tier for r in rows):
        mine = [r for r in rows if r.tier == name]
        for row in mine:
            _, _, _, recall, precision = scores([row])
            lines.append(
                (
                    name,
                    row.language,
                    str(row.tp),
                    str(row.fp),
                    str(row.fn),
                    f"{recall:.2f}",
                    f"{precision:.2f}",
                )
            )
        tp, fp, fn, recall, precision = scores(mine)
        lines.append((name, "ALL", str(tp), str(fp), str(fn), f"{recall:.3f}", f"{precision:.3f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines)


# -- language detection ---------------------------------------------------------


def detectors(libraries: bool = True) -> dict[str, Callable[[str], str | None]]:
    """Ours, and py3langid and lingua (restricted to our languages) when installed."""
    found: dict[str, Callable[[str], str | None]] = {"monitor": detect}
    if not libraries:
        return found
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        pass
    else:
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
        identifier.set_languages(list(LANGUAGES))
        found["py3langid"] = lambda text: str(identifier.classify(text)[0])
    try:
        import lingua  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        codes = {lingua.IsoCode639_1.from_str(code): code for code in LANGUAGES}
        chosen = [lingua.Language.from_iso_code_639_1(code) for code in codes]
        detector = lingua.LanguageDetectorBuilder.from_languages(*chosen).build()

        def by_lingua(text: str) -> str | None:
            language = detector.detect_language_of(text)
            return None if language is None else codes.get(language.iso_code_639_1)

        found["lingua"] = by_lingua
    return found


def detection(labelled: LabelledSet, libraries: bool = True) -> list[dict[str, object]]:
    """Accuracy of each detector on title + text and on titles alone, and its speed."""
    report = []
    for name, guess in detectors(libraries).items():
        guess(labelled.articles[0].title)  # load models outside the timing
        full = [guess(f"{a.title}\n{a.text}") == a.language for a in labelled.articles]
        began = time.perf_counter()
        titles = [guess(a.title) == a.language for a in labelled.articles]
        for a in labelled.articles:
            guess(f"{a.title}\n{a.text}")
        micros = (time.perf_counter() - began) / (2 * len(labelled.articles)) * 1e6
        report.append(
            {
                "detector": name,
                "accuracy": round(sum(full) / len(full), 3),
                "title_accuracy": round(sum(titles) / len(titles), 3),
                "us_per_text": round(micros, 1),
            }
        )
    return report


# -- analysers --------------------------------------------------------------------

_ALTERNATIVES = {
    "uk": ("pymorphy3", "simplemma"),
    "ru": ("pymorphy3", "simplemma", "snowball"),
    "tr": ("prefix", "simplemma", "snowball"),
    "pl": ("snowball", "simplemma"),
    "de": ("snowball", "simplemma"),
}


def _simplemma(language: str) -> Callable[[str], str]:
    """simplemma's lemma (loads its dictionary now, so the timing shows it)."""
    import simplemma

    simplemma.lemmatize("x", lang=language)
    return lambda word: str(simplemma.lemmatize(word, lang=language)).lower()


def analysers(labelled: LabelledSet) -> list[dict[str, object]]:
    """The forms tier of one language under each analyser it could use."""
    report = []
    for language, kinds in _ALTERNATIVES.items():
        for kind in kinds:
            began = time.perf_counter()
            try:
                forms.use(language, _simplemma(language) if kind == "simplemma" else kind)
            except ImportError:  # simplemma is not a dependency of monitor
                continue
            normalize.forget()
            loaded = time.perf_counter() - began
            rows = [r for r in forms_tier(labelled) if r.language == language]
            _, _, _, recall, precision = scores(rows)
            report.append(
                {"language": language, "analyser": kind, "recall": round(recall, 3),
                 "precision": round(precision, 3), "load_s": round(loaded, 2)}
            )  # fmt: skip
        forms.use(language, None)
        normalize.forget()
    return report


# -- name keys on real feeds -----------------------------------------------------


def feed_words(folder: Path) -> Counter[str]:
    """Capitalised words of every entry's title and summary in the feed corpus."""
    import feedparser

    words: Counter[str] = Counter()
    for path in sorted((folder / "feeds").iterdir()):
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        parsed = feedparser.parse(raw)
        for entry in parsed.entries:
            text = f"{entry.get('title', '')} {entry.get('summary', '')}"
            words.update(re.sub(r"<[^>]+>", " ", text).split())
    return Counter({w.strip(".,:;!?()\"'«»“”"): n for w, n in words.items() if w[:1].isupper()})


def name_collisions(words: Counter[str], rule_words: int = 300) -> dict[str, object]:
    """The ``rule_words`` most frequent name-like words of each script, each as a rule:
    which other distinct words of the corpus it meets only by name key (not folded,
    not an English form). Rules meet words across scripts, and Latin words from a
    romanised-looking name (``Budanov``); ``latin_to_latin_if_all`` counts what every
    Latin name would meet if Latin spellings always folded into each other."""
    keyed: dict[str, list[str]] = {}
    for word in words:
        key = name_key(word)
        if key:
            keyed.setdefault(key, []).append(word)
    ranked = [w for w, _ in words.most_common() if name_key(w)]
    met: dict[str, list[tuple[str, str]]] = {"across_scripts": [], "latin_to_latin": [], "if_all": []}
    for script in ("L", "C"):
        for word in [w for w in ranked if names.script(w) == script][:rule_words]:
            for other in keyed[name_key(word) or ""]:
                if fold(other) == fold(word) or normalize.analyse(other)[1] == normalize.analyse(word)[1]:
                    continue
                if names.script(other) != script:
                    met["across_scripts"].append((word, other))
                elif script == "L":
                    met["if_all"].append((word, other))
                    if names.romanised(word):
                        met["latin_to_latin"].append((word, other))
    return {
        "distinct_words": len(words),
        "with_name_key": sum(len(v) for v in keyed.values()),
        "cyrillic_with_name_key": sum(1 for v in keyed.values() for w in v if names.script(w) == "C"),
        "rule_words_per_script": rule_words,
        "met_across_scripts": len(met["across_scripts"]),
        "met_latin_to_latin": len(met["latin_to_latin"]),
        "met_latin_to_latin_if_all": len(met["if_all"]),
        "pairs_across_scripts": [f"{a} ~ {b}" for a, b in met["across_scripts"]],
        "pairs_latin_to_latin": [f"{a} ~ {b}" for a, b in met["latin_to_latin"]],
        "pairs_latin_to_latin_if_all_sample": [f"{a} ~ {b}" for a, b in met["if_all"][:40]],
    }


# -- the command ---------------------------------------------------------------------


def run(
    *,
    compare: bool = False,
    feeds: bool = False,
    libraries: bool = True,
    meaning: bool = True,
    out: TextIO = sys.stdout,
    results: Path = RESULTS,
) -> dict[str, object]:
    """Measure, print, write ``results/languages.json``; returns the report.
    ``libraries=False`` leaves py3langid and lingua out of the detectors; ``meaning=False``
    leaves out the ``about`` tier (it embeds every article with the model)."""
    labelled = LabelledSet.load()
    counts = Counter(a.language for a in labelled.articles)
    print(f"languages: {len(labelled.articles)} articles in {len(counts)} languages", file=out)
    rows = forms_tier(labelled) + names_tier(labelled) + (meaning_tier() if meaning else [])
    print(table(rows), file=out)
    report: dict[str, object] = {
        "benchmark": "languages",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "articles": dict(counts),
        "rows": [asdict(r) for r in rows],
        "tiers": {
            name: dict(
                zip(
                    ("tp", "fp", "fn", "recall", "precision"),
                    scores(r for r in rows if r.tier == name),
                    strict=True,
                )
            )
            for name in dict.fromkeys(r.tier for r in rows)
        },
        "detection": detection(labelled, libraries),
    }
    print("detection:", json.dumps(report["detection"]), file=out)
    if compare:
        report["analysers"] = analysers(labelled)
        for line in report["analysers"]:  # type: ignore[attr-defined]
            print("analyser:", json.dumps(line), file=out)
    if feeds:
        report["names_on_feeds"] = collisions = name_collisions(feed_words(corpus("feeds")))
        shown = {k: v for k, v in collisions.items() if not k.startswith("pairs")}
        print("names on real feeds:", json.dumps(shown), file=out)
        for kind in ("pairs_across_scripts", "pairs_latin_to_latin"):
            print(f"  {kind}:", ", ".join(collisions[kind]), file=out)  # type: ignore[arg-type]
    results.mkdir(parents=True, exist_ok=True)
    path = results / "languages.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=out)
    return report


def main(argv: Sequence[str]) -> int:
    """Command line of this benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench languages", description=__doc__.splitlines()[0])
    parser.add_argument("--analysers", action="store_true", help="compare word-form analysers per language")
    parser.add_argument("--feeds", action="store_true", help="name keys on the real feeds corpus")
    parser.add_argument("--no-meaning", action="store_true", help="leave out the about tier (the model)")
    args = parser.parse_args(argv)
    run(compare=args.analysers, feeds=args.feeds, meaning=not args.no_meaning)
    return 0
