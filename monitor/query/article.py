"""An article as the engine reads it: each field split into words, folded and stemmed
once, with positions and character spans computed only when a rule needs them."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.query.ast import FieldName
from monitor.query.normalize import WORD, analyse_all, cased


class FieldText:
    """One field's words: as written, folded, stemmed; indexes and spans on demand."""

    __slots__ = ("_distinct", "_spans", "folds", "stems", "text", "tokens")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = WORD.findall(text)
        self.folds, self.stems = analyse_all(self.tokens)
        self._spans: list[tuple[int, int]] | None = None
        self._distinct: dict[bool, frozenset[str]] = {}

    def keys(self, exact: bool) -> list[str]:
        """The words as a term compares them: folded when exact, else stemmed."""
        return self.folds if exact else self.stems

    def distinct(self, exact: bool) -> frozenset[str]:
        """The set of this field's words (folded when exact, else stemmed)."""
        found = self._distinct.get(exact)
        if found is None:
            found = self._distinct[exact] = frozenset(self.keys(exact))
        return found

    def positions(self, key: str, exact: bool) -> list[int]:
        """Word numbers where ``key`` stands in this field."""
        if key not in self.distinct(exact):
            return []
        keys, found, at = self.keys(exact), [], -1
        try:
            while True:
                at = keys.index(key, at + 1)
                found.append(at)
        except ValueError:
            return found

    def cased(self, position: int) -> str:
        """Word number ``position`` with its case kept (accents removed)."""
        return cased(self.tokens[position])

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Character span of words [start, end) in the field's text."""
        if self._spans is None:
            self._spans = [m.span() for m in WORD.finditer(self.text)]
        return self._spans[start][0], self._spans[end - 1][1]


class Analysed:
    """The fields of one article, each analysed on first use."""

    __slots__ = ("_fields", "texts")

    def __init__(self, texts: Mapping[FieldName, str]) -> None:
        self.texts = texts
        self._fields: dict[FieldName, FieldText] = {}

    def field(self, name: FieldName) -> FieldText:
        """The analysed words of one field (empty when the article has no such text)."""
        found = self._fields.get(name)
        if found is None:
            found = self._fields[name] = FieldText(self.texts.get(name, ""))
        return found

    def stream(self, *, folded: bool) -> str:
        """Every field's words, space-separated with a space at each end, fields on
        separate lines: what the prefilter scans (`` prisoner exchang ``)."""
        names = tuple(self.texts)
        if folded:
            return "\n".join(" " + " ".join(self.field(n).folds) + " " for n in names)
        return "\n".join(" " + " ".join(self.field(n).stems) + " " for n in names)
