"""Language tooling for rules, pure and offline: which language a text is in
(``detect``), a word's form in its language (``forms``), names folded across scripts
and spellings (``names``), and the ``aliases:`` table (``aliases``).

Nothing here reads files or the network at import time; the dictionaries that
Ukrainian, Russian and Turkish word forms need load on first use, from the
installed packages.
"""

from monitor.language.aliases import cycles, expand, lookup
from monitor.language.codes import LANGUAGES, known, listing
from monitor.language.detect import detect, detect_words, phrase_languages
from monitor.language.forms import fold, form
from monitor.language.names import looks_like_name, name_key, phrase_key, phrase_names, spelling, tagged

__all__ = [
    "LANGUAGES",
    "cycles",
    "detect",
    "detect_words",
    "expand",
    "fold",
    "form",
    "known",
    "listing",
    "looks_like_name",
    "lookup",
    "name_key",
    "phrase_key",
    "phrase_languages",
    "phrase_names",
    "spelling",
    "tagged",
]
