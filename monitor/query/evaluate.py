"""Evaluate a query tree on an analysed article, with the explanation: every place a
term matched (field and character span), for the snippet's highlights.

- A term (word or phrase) matches consecutive words; only punctuation or spaces may
  stand between them. Each word compares by stem, or by its folded form when exact;
  the last word of a prefix term by the start of its folded form. With
  ``case_sensitive`` the letters' case must agree too (on the part the stems share).
- NEAR: all operands in the same field, with at most N other words among them.
- A regex matches where it finds a non-empty match in a field's plain text (RE2:
  linear in the text, see ``pattern``).
- ``Hits`` come only from the parts of the tree that made it true: the words of a
  failed OR branch or under NOT are never highlighted.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.query.article import Analysed, FieldText
from monitor.query.ast import And, FieldName, Near, Node, Not, Or, Regex, Term


@dataclass(frozen=True, slots=True)
class Hit:
    """A term found at [start, end) of one field's text."""

    term: str
    field: FieldName
    start: int
    end: int


Occurrence = tuple[int, int]
"""Word positions [start, end) of one occurrence of a term in a field."""


def evaluate(node: Node, article: Analysed) -> list[Hit] | None:
    """None when the node does not hold, else the hits that make it hold (maybe none)."""
    if isinstance(node, Term):
        return _term_hits(node, article)
    if isinstance(node, And):
        hits: list[Hit] = []
        for child in node.children:
            found = evaluate(child, article)
            if found is None:
                return None
            hits += found
        return hits
    if isinstance(node, Or):
        results = [evaluate(child, article) for child in node.children]
        held = [found for found in results if found is not None]
        return [hit for found in held for hit in found] if held else None
    if isinstance(node, Not):
        return [] if evaluate(node.child, article) is None else None
    if isinstance(node, Near):
        return _near_hits(node, article)
    return _regex_hits(node, article)


def _term_hits(term: Term, article: Analysed) -> list[Hit] | None:
    hits = []
    for name in term.fields:
        words = article.field(name)
        for start, end in occurrences(term, words):
            hits.append(Hit(term.label, name, *words.span(start, end)))
    return hits or None


def occurrences(term: Term, words: FieldText) -> list[Occurrence]:
    """Where a term occurs in a field, as word positions."""
    size = len(term.keys)
    keys = words.keys(term.exact)
    if term.prefix and size == 1:
        head = term.keys[0]
        starts = sorted(
            p for key in words.distinct(True) if key.startswith(head) for p in words.positions(key, True)
        )
    else:
        starts = words.positions(term.keys[0], term.exact)
    found = []
    limit = len(keys) - size
    for p in starts:
        if p > limit or not _rest_agrees(term, words, keys, p):
            continue
        if term.case_sensitive and not _case_agrees(term, words, p):
            continue
        found.append((p, p + size))
    return found


def _rest_agrees(term: Term, words: FieldText, keys: list[str], p: int) -> bool:
    last = len(term.keys) - 1
    for i in range(1, last + 1):
        if term.prefix and i == last:
            if not words.folds[p + i].startswith(term.keys[i]):
                return False
        elif keys[p + i] != term.keys[i]:
            return False
    return True


def _case_agrees(term: Term, words: FieldText, p: int) -> bool:
    """The words' letter case agrees with the term's: exactly for exact words and
    prefixes; for stemmed words on the stem's length (``US`` vs ``us``, ``Troops``)."""
    last = len(term.keys) - 1
    for i, wanted in enumerate(term.cased):
        written = words.cased(p + i)
        if term.prefix and i == last:
            ok = written.startswith(wanted)
        elif term.exact:
            ok = written == wanted
        else:
            n = min(len(term.keys[i]), len(wanted), len(written))
            ok = written[:n] == wanted[:n]
        if not ok:
            return False
    return True


def _near_hits(node: Near, article: Analysed) -> list[Hit] | None:
    hits: list[Hit] = []
    for name in node.fields:
        words = article.field(name)
        found = [occurrences(term, words) for term in node.operands]
        if not all(found):
            continue
        for window in near_windows(found, node.distance):
            for term, (start, end) in zip(node.operands, window, strict=True):
                hits.append(Hit(term.label, name, *words.span(start, end)))
    return list(dict.fromkeys(hits)) or None


def near_windows(found: list[list[Occurrence]], distance: int) -> list[tuple[Occurrence, ...]]:
    """Every tightest choice of one occurrence per operand with at most ``distance``
    other words among them (sweep by end position, keeping each operand's latest)."""
    events = sorted((end, start, k) for k, occ in enumerate(found) for start, end in occ)
    latest: list[Occurrence | None] = [None] * len(found)
    windows = []
    for end, start, k in events:
        latest[k] = (start, end)  # a term's occurrences all have its length: later is tighter
        if any(o is None for o in latest):
            continue
        chosen = tuple(o for o in latest if o is not None)
        low = min(o[0] for o in chosen)
        others = (end - low) - sum(o[1] - o[0] for o in chosen)
        if others <= distance:
            windows.append(chosen)
    return windows


def _regex_hits(node: Regex, article: Analysed) -> list[Hit] | None:
    hits = []
    for name in node.fields:
        text = article.field(name).text
        hits += [Hit(node.label, name, start, end) for start, end in node.pattern.spans(text)]
    return hits or None
