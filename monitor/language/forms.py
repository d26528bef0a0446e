"""One word's form in a language: what its inflected forms have in common.

- English: the Snowball stemmer on the folded word (as before languages came).
- German, French, Spanish, Polish, Italian, Portuguese, Dutch: the Snowball stemmer
  (PyStemmer) on the lower-cased word with its accents, then folded. German compounds
  are one word, so ``Gefangenenaustausches`` -> ``gefangenenaustausch``.
- Arabic: Snowball after taking off the proclitics it leaves (و ف ل: ``والأسرى``,
  ``لتبادل``).
- Ukrainian and Russian: the dictionary lemma (pymorphy3 with its OpenCorpora and
  VESUM dictionaries; it guesses unknown words such as surnames from their endings):
  Snowball Russian stems ``обмен`` and ``обмена`` to ``обм`` but ``обменом`` to
  ``обмен``, and Snowball has no Ukrainian.
- Turkish: the first five letters (``takasının`` -> ``takas``). Snowball Turkish
  gives ``takası`` -> ``takas`` but ``takasının`` -> ``taka``; the simplemma lemma
  does as well as the prefix on our set but loads a 110 MB dictionary in seconds.

ADR 0015 has the measurements behind each choice. Every form is folded last
(``fold``), so accents and letter case never count. Analysers load on first use
(a pymorphy3 dictionary takes about 0.3 seconds and 18 MB), never at import time,
and nothing is downloaded: each ships inside its package. A PyStemmer object is not safe to share
between threads, so each is used under a lock.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Callable

import Stemmer

Analyser = Callable[[str], str]
"""Lower-cased word (accents kept) -> its form, before folding."""

_SNOWBALL = {
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "pl": "polish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "ar": "arabic",
    "tr": "turkish",
}
_LEMMAS = {"uk": "pymorphy3", "ru": "pymorphy3", "tr": "prefix"}
_loading = threading.Lock()


def fold(word: str) -> str:
    """Case- and accent-insensitive form: ``Zelénskyy`` -> ``zelenskyy``."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ı", "i")


def lower(word: str, language: str) -> str:
    """Lower case as the language writes it: Turkish ``I`` is ``ı``, ``İ`` is ``i``."""
    if language == "tr":
        word = word.replace("I", "ı").replace("İ", "i")
    return unicodedata.normalize("NFC", word.lower())


def snowball(algorithm: str) -> Analyser:
    """A Snowball stemmer from PyStemmer, locked for use from several threads."""
    stemmer = Stemmer.Stemmer(algorithm)
    lock = threading.Lock()

    def stem(word: str) -> str:
        with lock:
            return str(stemmer.stemWord(word))

    return stem


def _pymorphy(language: str) -> Analyser:
    import pymorphy3  # imported here: its dictionaries load only when a Slavic text comes

    # It logs each dictionary it loads at INFO: not news for whoever reads our log.
    logging.getLogger("pymorphy3").setLevel(logging.WARNING)
    morph = pymorphy3.MorphAnalyzer(lang=language)

    def lemma(word: str) -> str:
        try:
            parsed = morph.parse(word)
        except (KeyError, ValueError):  # it looks letters up by Unicode name: some have none
            return word
        return str(parsed[0].normal_form) if parsed else word

    return lemma


_PROCLITICS = ("و", "ف")


def _arabic(stem: Analyser) -> Analyser:
    def form(word: str) -> str:
        if word[:1] in _PROCLITICS and len(word) > 4:
            word = word[1:]
        if word.startswith("ل") and not word.startswith(("ال", "لل")) and len(word) > 4:
            word = word[1:]
        return stem(word)

    return form


_PREFIX = 5


def _prefix(word: str) -> str:
    """The first five letters (``takasının`` -> ``takas``): for Turkish, whose words
    grow by suffixes only, as good as a lemmatiser in retrieval studies (Can et al.
    2008) and on our set, with no dictionary to load."""
    return word[:_PREFIX]


def build(language: str, kind: str | None = None) -> Analyser:
    """The analyser of a language: ``kind`` ``snowball``, ``pymorphy3`` or ``prefix``
    (the benchmark compares them), else the one this module's docstring names."""
    kind = kind or _LEMMAS.get(language, "snowball")
    if kind == "pymorphy3":
        return _pymorphy(language)
    if kind == "prefix":
        return _prefix
    found = snowball(_SNOWBALL.get(language, "english"))
    return _arabic(found) if language == "ar" else found


_built: dict[str, Analyser] = {}


def _analyser(language: str) -> Analyser:
    found = _built.get(language)
    if found is None:
        with _loading:  # two threads meeting the first Ukrainian article load one dictionary
            found = _built.get(language)
            if found is None:
                found = _built[language] = build(language)
    return found


def use(language: str, analyser: Analyser | str | None) -> None:
    """Use another analyser for a language from now on: a function, a ``kind`` as
    ``build`` takes it, or None for the default. For the benchmark that compares
    them; callers of ``form`` must drop what they cached
    (``monitor.query.normalize.forget``)."""
    with _loading:
        if analyser is None or isinstance(analyser, str):
            _built[language] = build(language, analyser)
        else:
            _built[language] = analyser


def form(word: str, language: str) -> str:
    """The folded form of one word as written, in ``language`` (one of LANGUAGES)."""
    if language == "en":
        return _analyser("en")(fold(word))
    return fold(_analyser(language)(lower(word, language)))
