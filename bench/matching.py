"""Matching throughput: articles/s at 10, 1,000 and 10,000 rules, beside a naive loop.

The corpus and the rules are synthetic and deterministic (a fixed seed), so runs on
one machine compare:

- 5,000 articles of about 1 KB (title, summary, content; 20 feeds, 50 authors),
  words drawn from a 300,000-word vocabulary with a Zipf law (a few very common
  words, a long tail), in sentences with capitals and punctuation;
- rules in the mix people write: ``any``/``all``/``exclude`` lists, phrases,
  ``OR``, ``-word``, ``NEAR/10``, ``"a b"~5``, ``title:``, prefixes, ``exact``,
  a ``/regex/`` beside a word, feed globs. Their words come mostly from the
  vocabulary's long tail (ranks 20,000 and up: names and subjects people watch),
  one in twenty from ranks 5,000 to 20,000.
  The 10- and 1,000-rule sets are the first rules of the 10,000. Prefixes cut
  the last letter off a long word (``Zelenskyy`` -> ``Zelensky*``).

The engine is ``monitor.match.Matcher`` (Aho-Corasick prefilter, then the candidate
rules' trees). The naive loop is what a per-rule regex design does: for every rule,
search each of its phrases' regexes in the article's text; it runs on a sample of
the corpus, which is plenty at its speed.

``python -m bench matching [--articles N] [--rules 10,1000,10000] [--naive-sample N]``
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import TextIO

from monitor.config import WatchRule
from monitor.match import Matcher, article_texts, phrase_pattern
from monitor.models import Entry
from monitor.query import Analysed, parse_query
from monitor.query.ast import leaves

SEED = 20240531
RESULTS = Path(__file__).resolve().parent / "results"
_SYLLABLES = [c + v for c in "bdfghklmnprstvz" for v in ("a", "e", "i", "o", "u", "ia", "ou")]
_COMMON = "the of and to in a is that for on was with said as by at from it his an be has have"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    rules: int
    articles: int
    seconds: float
    articles_per_s: float
    matches: int
    build_s: float
    naive_articles: int
    naive_articles_per_s: float

    @property
    def speedup(self) -> float:
        """Engine throughput over the naive loop's."""
        return self.articles_per_s / self.naive_articles_per_s if self.naive_articles_per_s else 0.0


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """Distinct made-up words, most frequent first (a few real function words on top)."""
    words = _COMMON.split(" ")
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def corpus(articles: int, *, seed: int = SEED, vocab_size: int = 300_000) -> tuple[list[str], list[Entry]]:
    """The vocabulary and ``articles`` entries of about 1 KB each."""
    rng = random.Random(seed)
    vocab = vocabulary(rng, vocab_size)
    weights = list(accumulate(1.0 / (rank**1.07) for rank in range(1, len(vocab) + 1)))
    authors = [f"{rng.choice(vocab[500:]).title()} {rng.choice(vocab[500:]).title()}" for _ in range(50)]
    start = datetime(2024, 5, 1, tzinfo=UTC)

    def sentences(n_bytes: int) -> str:
        out: list[str] = []
        size = 0
        while size < n_bytes:
            words = rng.choices(vocab, cum_weights=weights, k=rng.randint(6, 18))
            text = " ".join(words).capitalize() + rng.choice((".", ".", ".", "?", ";", ","))
            out.append(text)
            size += len(text) + 1
        return " ".join(out)

    entries = []
    for i in range(articles):
        title = sentences(50).rstrip(".?;,")
        summary = sentences(180)
        content = sentences(760)
        entries.append(
            Entry(
                key=f"a{i}",
                title=title,
                link=f"https://news.example/{i}",
                author=rng.choice(authors),
                published=start + timedelta(minutes=7 * i),
                summary_html=summary,
                summary_text=summary,
                content_html=content,
                content_text=content,
            )
        )
    return vocab, entries


def rules(count: int, vocab: Sequence[str], *, seed: int = SEED) -> list[WatchRule]:
    """``count`` rules in the mix people write (see the module docstring)."""
    rng = random.Random(seed + 1)

    tail, middle = len(vocab) // 15, len(vocab) // 60  # ranks 20,000 and 5,000 of 300,000

    def word() -> str:
        low = middle if rng.random() < 0.05 else tail
        return vocab[rng.randrange(low, len(vocab))]

    def stem() -> str:
        long = next(w for w in iter(word, "") if len(w) >= 8)
        return long[:-1]

    def two() -> str:
        return f"{word()} {word()}"

    shapes: list[Callable[[], dict[str, object]]] = [
        lambda: {"any": [word() for _ in range(rng.randint(1, 3))]},
        lambda: {"any": [two(), word()]},
        lambda: {"all": [word(), word()], "exclude": [word()]},
        lambda: {"query": f'"{two()}" OR {word()}'},
        lambda: {"query": f"{word()} -{word()}"},
        lambda: {"query": f"{word()} NEAR/10 {word()}"},
        lambda: {"query": f'"{two()}"~5'},
        lambda: {"query": f"title:{word()} OR {word()}"},
        lambda: {"query": f"{stem()}*"},
        lambda: {"query": f"({word()} OR {word()}) {word()}"},
        lambda: {"query": f"{word()} /{word()}s?/"},
        lambda: {"any": [word()], "exact": True},
        lambda: {"any": [word(), word()], "feeds": ["Feed 1*"]},
    ]
    made = []
    for i in range(count):
        fields = rng.choice(shapes)()
        made.append(WatchRule.model_validate({"name": f"rule {i}", "notify": ["c"], **fields}))
    return made


def naive_patterns(rule: WatchRule) -> list[re.Pattern[str]]:
    """One regex per phrase of the rule: what a per-rule regex design compiles."""
    phrases = [*rule.any, *rule.all, *rule.exclude]
    if rule.query:
        for leaf in leaves(parse_query(rule.query)):
            phrases.append(leaf.label.strip("*/"))
    return [phrase_pattern(p) for p in phrases]


def _feed(i: int) -> str:
    return f"Feed {i % 20}"


def measure(
    size: int, vocab: Sequence[str], entries: Sequence[Entry], naive_sample: int, repeat: int = 3
) -> tuple[Row, int]:
    """Time the engine on every entry (best of ``repeat``) and the naive loop once on
    the first ``naive_sample`` entries."""
    ruleset = rules(size, vocab)
    began = time.perf_counter()
    matcher = Matcher(ruleset)
    build = time.perf_counter() - began
    seconds, matches = float("inf"), 0
    for _ in range(repeat):  # best of a few: the machine may be busy with other work
        began = time.perf_counter()
        matches = sum(len(matcher.match(entry, _feed(i))) for i, entry in enumerate(entries))
        seconds = min(seconds, time.perf_counter() - began)
    patterns = [naive_patterns(r) for r in ruleset]
    sample = entries[:naive_sample]
    began = time.perf_counter()
    naive_hits = 0
    for entry in sample:
        text = "\n".join((entry.title, entry.summary_text, entry.content_text))
        for rule_patterns in patterns:
            naive_hits += any(p.search(text) for p in rule_patterns)
    naive_seconds = time.perf_counter() - began
    row = Row(
        rules=size,
        articles=len(entries),
        seconds=seconds,
        articles_per_s=len(entries) / seconds if seconds else 0.0,
        matches=matches,
        build_s=build,
        naive_articles=len(sample),
        naive_articles_per_s=len(sample) / naive_seconds if naive_seconds else 0.0,
    )
    return row, naive_hits


def table(rows: Sequence[Row]) -> str:
    """The results as a text table."""
    head = (
        "rules",
        "engine articles/s",
        "naive regex articles/s",
        "speed-up",
        "vs 10 rules",
        "matches/article",
        "build s",
    )
    base = rows[0].articles_per_s if rows else 0.0
    lines = [head]
    for r in rows:
        lines.append(
            (
                f"{r.rules:,}",
                f"{r.articles_per_s:,.0f}",
                f"{r.naive_articles_per_s:,.1f} (on {r.naive_articles})",
                f"{r.speedup:,.0f}x",
                f"{r.articles_per_s / base:.2f}" if base else "-",
                f"{r.matches / r.articles:.2f}" if r.articles else "-",
                f"{r.build_s:.2f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines)


def run(
    *,
    articles: int = 5_000,
    vocab_size: int = 300_000,
    sizes: Sequence[int] = (10, 1_000, 10_000),
    naive_sample: int = 50,
    out: TextIO = sys.stdout,
    results: Path = RESULTS,
) -> dict[str, object]:
    """Generate, measure, print the table, write ``results/matching.json``; returns the report."""
    vocab, entries = corpus(articles, vocab_size=vocab_size)
    size = sum(len(e.title) + len(e.summary_text) + len(e.content_text) for e in entries) / max(1, articles)
    print(f"matching: {articles:,} articles of {size:,.0f} characters on average", file=out)
    for i, entry in enumerate(entries):  # fill the word caches, as a running daemon has them
        Analysed(article_texts(entry, _feed(i))).stream("fold")
    rows = []
    for n in sizes:
        row, _ = measure(n, vocab, entries, min(naive_sample, articles))
        rows.append(row)
        print(f"  {n:,} rules: {row.articles_per_s:,.0f} articles/s", file=out)
    print(table(rows), file=out)
    report: dict[str, object] = {
        "benchmark": "matching",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "corpus": {
            "articles": articles,
            "average_characters": round(size),
            "vocabulary": vocab_size,
            "seed": SEED,
        },
        "rows": [asdict(r) | {"speedup": r.speedup} for r in rows],
    }
    results.mkdir(parents=True, exist_ok=True)
    path = results / "matching.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=out)
    return report


def main(argv: Sequence[str]) -> int:
    """Command line of this benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench matching", description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=5_000)
    parser.add_argument("--rules", default="10,1000,10000", help="comma-separated rule counts")
    parser.add_argument("--naive-sample", type=int, default=50, help="articles for the naive loop")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.rules.split(",") if n.strip()]
    run(articles=args.articles, sizes=sizes, naive_sample=args.naive_sample)
    return 0
