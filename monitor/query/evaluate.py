"""Evaluate a query tree on an analysed article, with the explanation: every place a
term matched (field and character span), for the snippet's highlights.

- A term (word or phrase) matches consecutive words; only punctuation or spaces may
  stand between them. Each word compares by its form in the article's language when
  the phrase may be in that language, else (and when exact) by its folded form; the
  last word of a prefix term by the start of its folded form; a name also by its
  name key (``readings``). With ``case_sensitive`` the letters' case must agree too
  (on the part the forms share; name keys cross scripts, so they skip this check).
- NEAR: all operands in the same field, with at most N other words among them.
- A regex matches where it finds a non-empty match in a field's plain text (RE2:
  linear in the text, see ``pattern``).
- ``Hits`` come only from the parts of the tree that made it true: the words of a
  failed OR branch or under NOT are never highlighted.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.query.article import Analysed, FieldText, Space
from monitor.query.ast import And, FieldName, Near, Node, Not, Or, Regex, Term
from monitor.query.normalize import analyse


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


def readings(term: Term, language: str | None) -> list[tuple[Space, tuple[str, ...]]]:
    """How a term's words compare in an article of ``language``: their forms in it when
    the phrase may be in that language (and is not exact), else folded; and by name
    key when the phrase is a name. The last word of a prefix is always folded."""
    found: list[tuple[Space, tuple[str, ...]]]
    if term.exact or language not in term.languages:
        found = [("fold", term.keys)]
    else:
        keys = [analyse(word, language)[1] for word in term.written]
        if term.prefix:
            keys[-1] = term.keys[-1]
        found = [("form", tuple(keys))]
    found += [("name", keys) for keys in term.names]
    return found


def occurrences(term: Term, words: FieldText) -> list[Occurrence]:
    """Where a term occurs in a field, as word positions (in any of its readings)."""
    found: list[Occurrence] = []
    for space, keys in readings(term, words.language):
        found += _occurrences(term, words, space, keys)
    return sorted(set(found)) if len(found) > 1 else found


def _occurrences(term: Term, words: FieldText, space: Space, wanted: tuple[str, ...]) -> list[Occurrence]:
    size = len(wanted)
    keys = words.keys(space)
    if term.prefix and size == 1:
        head = wanted[0]
        starts = sorted(
            p for key in words.distinct("fold") if key.startswith(head) for p in words.positions(key, "fold")
        )
    else:
        starts = words.positions(wanted[0], space)
    found = []
    limit = len(keys) - size
    for p in starts:
        if p > limit or not _rest_agrees(term, words, keys, wanted, p):
            continue
        if term.case_sensitive and space != "name" and not _case_agrees(term, words, wanted, space, p):
            continue
        found.append((p, p + size))
    return found


def _rest_agrees(term: Term, words: FieldText, keys: list[str], wanted: tuple[str, ...], p: int) -> bool:
    last = len(wanted) - 1
    for i in range(1, last + 1):
        if term.prefix and i == last:
            if not words.folds[p + i].startswith(wanted[i]):
                return False
        elif keys[p + i] != wanted[i]:
            return False
    return True


def _case_agrees(term: Term, words: FieldText, wanted: tuple[str, ...], space: Space, p: int) -> bool:
    """The words' letter case agrees with the term's: exactly for folded words and
    prefixes; for word forms on the form's length (``US`` vs ``us``, ``Troops``)."""
    last = len(wanted) - 1
    for i, want in enumerate(term.cased):
        written = words.cased(p + i)
        if term.prefix and i == last:
            ok = written.startswith(want)
        elif space == "fold":
            ok = written == want
        else:
            n = min(len(wanted[i]), len(want), len(written))
            ok = written[:n] == want[:n]
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
