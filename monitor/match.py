"""Pure rule matching: (rules, entry, feed name) -> matches with highlighted snippets.

The rule spec, as users write it in config.yaml:

- ``any``: at least one of these phrases appears; ``all``: every one appears;
  both may be given (then both must hold). ``exclude``: none of these appears.
- A phrase matches whole words, case-insensitively: ``ATACMS`` does not match
  ``ATACMSX``; ``prisoner exchange`` matches ``Prisoner-exchange`` and
  ``prisoner\\nexchange`` (any punctuation or whitespace between the words).
- Fields searched: the title, the summary, the content and, when the feed gives only
  a teaser, the article text from its web page (``page``), all as plain text (HTML
  removed first, so markup never matches).
- ``feeds``: optional globs on the feed name (``BBC*``), case-insensitive; a rule
  with no globs applies to every feed.

The snippet comes from the first hit in the summary, content or page (the title is
shown anyway), else from the title; every matched phrase inside it is marked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from monitor.config import WatchRule
from monitor.models import Entry, Field, Match, Snippet

FIELDS: tuple[Field, ...] = ("title", "summary", "content", "page")
_SNIPPET_FIELDS: tuple[Field, ...] = ("summary", "content", "page", "title")
_WORDS = re.compile(r"\w+")
SNIPPET_BEFORE = 120
SNIPPET_AFTER = 180


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Whole words, any case, any punctuation or whitespace between them."""
    words = _WORDS.findall(phrase)
    body = r"\W+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Hit:
    phrase: str
    field: Field
    start: int
    end: int


@dataclass(frozen=True)
class CompiledRule:
    """A WatchRule with its phrases compiled once."""

    name: str
    any: tuple[tuple[str, re.Pattern[str]], ...]
    all: tuple[tuple[str, re.Pattern[str]], ...]
    exclude: tuple[re.Pattern[str], ...]
    feeds: tuple[str, ...]

    @classmethod
    def compile(cls, rule: WatchRule) -> CompiledRule:
        """Compile a rule's phrases."""
        return cls(
            name=rule.name,
            any=tuple((p, phrase_pattern(p)) for p in rule.any),
            all=tuple((p, phrase_pattern(p)) for p in rule.all),
            exclude=tuple(phrase_pattern(p) for p in rule.exclude),
            feeds=tuple(g.lower() for g in rule.feeds),
        )

    def applies_to(self, feed_name: str) -> bool:
        """Whether the rule's feed globs admit this feed."""
        name = feed_name.lower()
        return not self.feeds or any(fnmatchcase(name, glob) for glob in self.feeds)

    def evaluate(self, entry: Entry) -> Match | None:
        """A Match when the entry satisfies any/all/exclude, else None."""
        texts = {f: entry.text(f) for f in FIELDS}
        if any(_first(pattern, texts) for pattern in self.exclude):
            return None
        hits: list[_Hit] = []
        for phrase, pattern in self.all:
            hit = _first(pattern, texts, phrase)
            if hit is None:
                return None
            hits.append(hit)
        any_hits = [h for p, pat in self.any if (h := _first(pat, texts, p)) is not None]
        if self.any and not any_hits:
            return None
        hits.extend(any_hits)
        patterns = [pat for _, pat in self.all + self.any]
        return _build_match(self.name, hits, texts, patterns)


class Matcher:
    """All rules, compiled once per configuration."""

    def __init__(self, rules: Iterable[WatchRule]) -> None:
        self.rules = tuple(CompiledRule.compile(r) for r in rules)

    def match(self, entry: Entry, feed_name: str) -> list[Match]:
        """Every rule the entry satisfies, in config order."""
        matches = []
        for rule in self.rules:
            if rule.applies_to(feed_name):
                found = rule.evaluate(entry)
                if found is not None:
                    matches.append(found)
        return matches


def _first(pattern: re.Pattern[str], texts: dict[Field, str], phrase: str = "") -> _Hit | None:
    """The first occurrence of a pattern, looking in the summary and content before the
    title, so a phrase in both gives its snippet from the body (the title is shown anyway)."""
    for field in _SNIPPET_FIELDS:
        found = pattern.search(texts[field])
        if found:
            return _Hit(phrase, field, found.start(), found.end())
    return None


def _build_match(
    rule: str, hits: Sequence[_Hit], texts: dict[Field, str], patterns: Sequence[re.Pattern[str]]
) -> Match:
    ordered = sorted(hits, key=lambda h: (_SNIPPET_FIELDS.index(h.field), h.start))
    anchor = ordered[0]
    terms = tuple(dict.fromkeys(h.phrase for h in hits))
    snippet = make_snippet(texts[anchor.field], anchor.start, anchor.end, patterns)
    return Match(rule=rule, field=anchor.field, terms=terms, snippet=snippet)


def make_snippet(text: str, start: int, end: int, patterns: Sequence[re.Pattern[str]]) -> Snippet:
    """About 300 characters around [start, end) on one line, every pattern hit marked."""
    lo = max(0, start - SNIPPET_BEFORE)
    hi = min(len(text), end + SNIPPET_AFTER)
    if lo > 0:
        space = text.find(" ", lo, start)
        lo = space + 1 if space != -1 else lo
    if hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space != -1 else hi
    window = text[lo:hi].replace("\n", " ")
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(text) else ""
    # Search the whole text, not the window: a word cut at the window's edge must not
    # look like a whole word (``XATACMS`` cut to ``ATACMS``).
    shift = len(prefix) - lo
    spans = sorted(
        {
            (m.start() + shift, m.end() + shift)
            for p in patterns
            for m in p.finditer(text)
            if lo <= m.start() and m.end() <= hi
        }
    )
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return Snippet(text=prefix + window + suffix, highlights=tuple(merged))
