"""Background term statistics: how common a word is in general, per language.

Story assignment weighs a shared word by how rare it is (a shared "Qeshm" says more
than a shared "said"). The weights come from a general source, never from the
articles being grouped: the ``wordfreq`` package's frequency lists (many languages:
en, de, fr, ru, uk, ...), read once per language when first needed. A language that
wordfreq does not know gets an empty table, so every word counts as rare and only the
capitalised names, numbers and the bounded signatures keep the method sane.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from typing import Protocol

import wordfreq

UNSEEN_ZIPF = 2.0
"""Zipf value of a word missing from the table (wordfreq's 'small' lists stop near 1 per
million words, Zipf 3): rare, but not rarer than a word the list does know is rare."""
MAX_IDF = 8.0


class TermStats(Protocol):
    """How common lower-cased words are in a language: Zipf values (0 unknown .. 8 'the');
    a word missing from the table counts as UNSEEN_ZIPF."""

    def zipf_table(self, lang: str) -> Mapping[str, float]: ...


def idf(zipf: float) -> float:
    """An idf-like weight from a Zipf value: MAX_IDF minus it, never below 0."""
    return max(0.0, MAX_IDF - zipf)


def base_language(code: str) -> str:
    """``en-US`` -> ``en``; empty or odd codes -> ``und`` (unknown)."""
    head = (code or "").replace("_", "-").split("-", 1)[0].strip().lower()
    return head if head.isalpha() and 2 <= len(head) <= 3 else "und"


@cache
def _zipf_table(lang: str) -> dict[str, float]:
    """Zipf frequency (log10 of uses per billion words) of every word wordfreq lists."""
    if lang not in wordfreq.available_languages("small"):
        return {}
    table = wordfreq.get_frequency_dict(lang, "small")
    return {word: math.log10(freq * 1e9) for word, freq in table.items() if freq > 0}


class WordfreqStats:
    """TermStats from wordfreq's 'small' lists (about 30,000 words a language)."""

    def zipf_table(self, lang: str) -> Mapping[str, float]:
        """The language's table (empty for a language wordfreq lacks)."""
        return _zipf_table(base_language(lang))


class UniformStats:
    """Every word equally informative (an empty table): for tests, and what a language
    without a table gets."""

    def zipf_table(self, lang: str) -> Mapping[str, float]:
        """No word is known to be common."""
        return {}
