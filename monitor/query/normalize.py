"""Words as rules compare them: split, case- and accent-folded, stemmed.

- A word is a run of letters, digits and underscores (``\\w``), with any combining
  accents that follow a letter (so ``e`` + U+0301 is one word, like ``é``).
  Everything else separates words: ``prisoner-exchange`` is two words.
- ``fold``: ``str.casefold`` then Unicode NFKD with the combining marks removed, so
  ``Zelenskyy``, ``ZELENSKYY`` and ``Zelénskyy`` all become ``zelenskyy``.
- ``stem``: the Snowball English stemmer (PyStemmer) applied to the folded word, so
  ``exchange``, ``exchanges`` and ``exchanged`` share the stem ``exchang``. Words
  of other languages pass through it mostly unchanged, and are still folded.
- ``cased``: NFKD with the marks removed but the case kept, for ``case_sensitive``.

The same functions split and fold the query and the article, so the two always
agree on where words start and end. Results are cached per distinct word.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from functools import cache

import Stemmer

_MARKS = "\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
WORD = re.compile(rf"\w[\w{_MARKS}]*")
"""One word of text or query; ``finditer`` gives its span in the original text."""

_CACHE_LIMIT = 200_000
_lock = threading.Lock()


_pairs: dict[str, tuple[str, str]] = {}
"""Word as written -> (folded, stem). Replaced by an empty one when full (never
cleared in place), so a thread that holds it keeps a consistent view."""


@cache
def _stemmer() -> Callable[[str], str]:
    """Snowball English from PyStemmer; built on first use (not at import time)."""
    stemmer = Stemmer.Stemmer("english")

    def stem(word: str) -> str:
        # A PyStemmer object is not safe to share between threads; polls run in several.
        with _lock:
            return str(stemmer.stemWord(word))

    return stem


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(word: str) -> str:
    """Case- and accent-insensitive form: ``Zelénskyy`` -> ``zelenskyy``."""
    if word.isascii():
        return word.lower()
    return _strip_marks(word.casefold())


def cased(word: str) -> str:
    """Accent-insensitive form that keeps the letter case: ``US`` stays ``US``."""
    return word if word.isascii() else _strip_marks(word)


def stem(folded: str) -> str:
    """The English stem of a folded word: ``exchanges`` -> ``exchang``."""
    return _stemmer()(folded)


def analyse(word: str) -> tuple[str, str]:
    """(fold, stem) of one word as written, cached."""
    global _pairs
    found = _pairs.get(word)
    if found is None:
        folded = fold(word)
        found = (folded, stem(folded))
        if len(_pairs) >= _CACHE_LIMIT:
            _pairs = {}
        _pairs[word] = found
    return found


def analyse_all(written: list[str]) -> tuple[list[str], list[str]]:
    """Folded and stemmed forms of many words (one dictionary lookup each once seen)."""
    get = _pairs.get
    pairs = [get(word) or analyse(word) for word in written]
    return [f for f, _ in pairs], [s for _, s in pairs]


def words(text: str) -> list[str]:
    """The words of a text, in order."""
    return WORD.findall(text)
