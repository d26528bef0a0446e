"""An article as the engine reads it: its language, and each field split into words,
folded and put in their forms in that language once, with name keys, positions and
character spans computed only when a rule needs them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from monitor.language import detect_words
from monitor.query.ast import FieldName
from monitor.query.normalize import ENGLISH, WORD, analyse_all, cased, names, words

Space = Literal["fold", "form", "name"]
"""How words compare: folded, in their language's forms, or by name key."""

DETECT_FIELDS: tuple[FieldName, ...] = ("title", "summary", "content", "page")
"""The fields whose text decides an article's language (title and lead first)."""
_SAMPLE = 600
_WORDS = 60


class FieldText:
    """One field's words: as written, folded, in their forms; the rest on demand."""

    __slots__ = ("_distinct", "_names", "_spans", "folds", "language", "stems", "text", "tokens")

    def __init__(self, text: str, language: str | None = None) -> None:
        self.text = text
        self.language = language
        self.tokens: list[str] = words(text)
        self.folds, self.stems = analyse_all(self.tokens, language)
        self._names: list[str] | None = None
        self._spans: list[tuple[int, int]] | None = None
        self._distinct: dict[Space, frozenset[str]] = {}

    def keys(self, space: Space) -> list[str]:
        """The words as a reading compares them: folded, forms, or name keys ("" if none)."""
        if space == "fold":
            return self.folds
        if space == "form":
            return self.stems
        if self._names is None:
            self._names = names(self.tokens)
        return self._names

    def distinct(self, space: Space) -> frozenset[str]:
        """The set of this field's words in one space."""
        found = self._distinct.get(space)
        if found is None:
            found = self._distinct[space] = frozenset(self.keys(space))
        return found

    def positions(self, key: str, space: Space) -> list[int]:
        """Word numbers where ``key`` stands in this field."""
        if key not in self.distinct(space):
            return []
        keys, found, at = self.keys(space), [], -1
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
    """The fields of one article, each analysed on first use, in the article's language:
    ``language`` when given (a feed's ``language:``), else detected from its text."""

    __slots__ = ("_fields", "language", "texts")

    def __init__(
        self, texts: Mapping[FieldName, str], language: str | None = None, *, detected: bool = True
    ) -> None:
        self.texts = texts
        self._fields: dict[FieldName, FieldText] = {}
        self.language = language if language is not None or not detected else self._detect()

    def _detect(self) -> str | None:
        """Detect from the first words of the title, summary, content and page, analysed
        as English on the way (kept when that is the answer, the common case)."""
        words: list[str] = []
        samples: list[str] = []
        for name in DETECT_FIELDS:
            text = self.texts.get(name, "")
            if not text:
                continue
            field = self._fields[name] = FieldText(text, ENGLISH)
            words += field.folds
            samples.append(text[:_SAMPLE])
            if len(words) >= _WORDS:
                break
        language = detect_words(words, " ".join(samples))
        if language != ENGLISH:
            self._fields = {}
        return language

    def field(self, name: FieldName) -> FieldText:
        """The analysed words of one field (empty when the article has no such text)."""
        found = self._fields.get(name)
        if found is None:
            found = self._fields[name] = FieldText(self.texts.get(name, ""), self.language)
        return found

    def stream(self, space: Space) -> str:
        """Every field's words in one space, space-separated with a space at each end,
        fields on separate lines: what the prefilter scans (`` prisoner exchang ``).
        Words without a name key stand as ``|`` in the names' stream."""
        lines = []
        for name in self.texts:
            keys = self.field(name).keys(space)
            if space == "name":
                keys = [k or "|" for k in keys]
            lines.append(" " + " ".join(keys) + " ")
        return "\n".join(lines)
