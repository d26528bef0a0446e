"""Words as rules compare them: split, case- and accent-folded, and in their word forms.

- A word is a run of letters, digits and underscores (``\\w``), with any combining
  accents that follow a letter (so ``e`` + U+0301 is one word, like ``é``).
  Everything else separates words: ``prisoner-exchange`` is two words.
- ``fold``: ``str.casefold`` then Unicode NFKD with the combining marks removed, so
  ``Zelenskyy``, ``ZELENSKYY`` and ``Zelénskyy`` all become ``zelenskyy``.
- ``stem``: the Snowball English stemmer (PyStemmer) applied to the folded word, so
  ``exchange``, ``exchanges`` and ``exchanged`` share the stem ``exchang``.
- ``analyse_all(words, language)``: folded words and their forms in the article's
  language (``monitor.language.forms``: Snowball stems, or Ukrainian, Russian and
  Turkish lemmas); English when the language is unknown.
- ``names``: the name keys of name-like words (``monitor.language.names``), so
  ``Zelenskyy`` and ``Зеленського`` meet.
- ``cased``: NFKD with the marks removed but the case kept, for ``case_sensitive``.

The same functions split and fold the query and the article, so the two always
agree on where words start and end. Results are cached per distinct word (and
language).
"""

from __future__ import annotations

import re
import unicodedata

from monitor.language import fold, form, tagged

_MARKS = "\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
WORD = re.compile(rf"\w[\w{_MARKS}]*")
"""One word of text or query; ``finditer`` gives its span in the original text."""

ENGLISH = "en"
_CACHE_LIMIT = 200_000
_ASCII_WORDS = bytes(c if chr(c).isalnum() or c == ord("_") else ord(" ") for c in range(128)) + b" " * 128
"""Bytes -> themselves for ASCII letters, digits and ``_`` (what ``\\w`` is in ASCII),
a space for every other byte: ``words`` splits ASCII text with it."""

_pairs: dict[str, dict[str, tuple[str, str]]] = {}
"""Language -> word as written -> (folded, form). Each language's table is replaced by
an empty one when full (never cleared in place), so a thread that holds it keeps a
consistent view."""

_names: dict[str, str] = {}
"""Word as written -> its name key ("" when it is not name-like); replaced when full."""

__all__ = ["WORD", "analyse", "analyse_all", "cased", "fold", "forget", "names", "stem", "words"]


def cased(word: str) -> str:
    """Accent-insensitive form that keeps the letter case: ``US`` stays ``US``."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def stem(folded: str) -> str:
    """The English stem of a folded word: ``exchanges`` -> ``exchang``."""
    return form(folded, ENGLISH)


def analyse(word: str, language: str | None = None) -> tuple[str, str]:
    """(fold, form) of one word as written, in a language (English when None), cached."""
    language = language or ENGLISH
    table = _pairs.get(language)
    if table is None or len(table) >= _CACHE_LIMIT:
        table = _pairs[language] = {}
    found = table.get(word)
    if found is None:
        found = table[word] = (fold(word), form(word, language))
    return found


def analyse_all(written: list[str], language: str | None = None) -> tuple[list[str], list[str]]:
    """Folded words and their forms (one dictionary lookup each once seen)."""
    get = _pairs.get(language or ENGLISH, {}).get
    pairs = [get(word) or analyse(word, language) for word in written]
    return [f for f, _ in pairs], [s for _, s in pairs]


def names(written: list[str]) -> list[str]:
    """Each word's name key tagged with its script (``Cselensk``), or "" for a word
    that does not look like a name."""
    global _names
    if len(_names) >= _CACHE_LIMIT:
        _names = {}
    table, found = _names, []
    for word in written:
        key = table.get(word)
        if key is None:
            key = table[word] = tagged(word)
        found.append(key)
    return found


def forget() -> None:
    """Drop every cached form (after ``monitor.language.forms.use``)."""
    _pairs.clear()


def words(text: str) -> list[str]:
    """The words of a text, in order: ``WORD.findall``, which an ASCII text (half of
    English news, most titles) gets from a byte translation and a split instead, at
    about three fifths of the regex's cost (the same words: a test holds the two)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split()
    return WORD.findall(text)
