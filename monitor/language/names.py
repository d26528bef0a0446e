"""Names across scripts and spellings: one key for ``Zelenskyy``, ``Selenskyj``,
``Zełenski``, ``Зеленський``, ``Зеленского`` and ``Selenskyjs``.

A name key is written in a reduced alphabet where the common romanisations of
Ukrainian and Russian (English, German, Polish, French, ISO 9) agree:

1. Cyrillic letters map to that alphabet one by one (ж -> Z, ш щ -> S, ч -> C,
   ц -> T, х г ґ -> h, и і ї й ы -> i, е є э ё -> e, ю -> iu, я -> ia, ь ъ dropped).
2. Latin spellings fold to it: shch szcz sch sh sz š -> S, tsch tch ch cz č -> C,
   zh ž ż -> Z, ts tz -> T, kh h g -> h, y j -> i, w -> v, c -> k, x -> ks, z -> s
   (German writes з as ``s``: ``Selenskyj``), ie -> e (``Yermak``, ``Єрмак``).
   Then doubled letters collapse (``Zelenskyy``).
3. Case endings come off: one of -s (German, English genitive), then one of
   -oho -omu -im -om -oi -a -u -i -e -o ... when a stem of at least four letters
   ending in a consonant is left; Ukrainian ``-ів`` stems become ``-ov`` (``Харків``,
   ``Харкова``, ``Харьков``). Feminine forms of ``-ski`` names keep an ``a``
   (``Zelenska`` is not ``Zelensky``). Words in capitals (``ATACMS``) keep their end.

Only words that look like names get a key: written with a capital first letter, in
Latin or Cyrillic letters alone, at least three letters of key. Common words never
fold this way (``обмін`` has no key). Keys are tagged with the word's script, and a
name written in Latin letters in a rule meets only Cyrillic words by key
(``phrase_names``), which keeps false matches rare: see ADR 0015 for the count on
real feeds.
"""

from __future__ import annotations

import re
import unicodedata

_CYRILLIC_KEYS = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "h", "д": "d", "е": "e", "є": "e", "ё": "e",
    "ж": "Z", "з": "s", "и": "i", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m",
    "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h",
    "ц": "T", "ч": "C", "ш": "S", "щ": "S", "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "iu",
    "я": "ia",
}  # fmt: skip
_LATIN_LETTERS = {"š": "S", "č": "C", "ž": "Z", "ż": "Z", "ł": "l", "ß": "s", "ø": "o", "æ": "e", "œ": "e"}
_LATIN_SPELLINGS = [
    ("schtsch", "S"), ("shch", "S"), ("szcz", "S"), ("tsch", "C"), ("sch", "S"), ("tch", "C"),
    ("sh", "S"), ("sz", "S"), ("ch", "C"), ("cz", "C"), ("zh", "Z"), ("kh", "h"), ("ts", "T"),
    ("tz", "T"), ("ck", "k"), ("ph", "f"), ("ou", "u"), ("x", "ks"), ("q", "k"), ("w", "v"),
    ("y", "i"), ("j", "i"), ("c", "k"), ("g", "h"), ("z", "s"),
]  # fmt: skip
_SPELLING = re.compile("|".join(re.escape(a) for a, _ in _LATIN_SPELLINGS))
_SPELLINGS = dict(_LATIN_SPELLINGS)
_DOUBLES = re.compile(r"(.)\1+")
_LETTERS = re.compile("[A-Za-z\u00c0-\u024f\u0400-\u04ff]+")
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_ENDINGS = (
    "oiu", "oho", "eho", "omu", "emu", "ovi", "evi", "imi", "ami", "im", "om", "em", "oi", "ei",
    "ia", "iu", "a", "u", "i", "e", "o",
)  # fmt: skip
_FEMININE = frozenset({"a", "oi", "u", "oiu", "ei"})
_VOWELS = frozenset("aeiou")
_ROMANISED = re.compile(
    r"\w{2,}(?:sk(?:y|yi|yy|iy|i|yj|ij)|ova?|eva?|enko|chuk|[iy]uk|[oe]v[iy]ch|iv)$", re.IGNORECASE
)
_MIN_STEM = 4
_MIN_KEY = 3


def looks_like_name(word: str) -> bool:
    """A capitalised word of Latin or Cyrillic letters only (``Kyiv``, ``ATACMS``, ``Зеленського``)."""
    return word[:1].isupper() and _LETTERS.fullmatch(word) is not None


def spelling(word: str) -> str:
    """The word in the reduced alphabet, endings kept: ``Zelenskyy`` -> ``selenski``."""
    lowered = word.lower()
    if _CYRILLIC.search(lowered):
        reduced = "".join(_CYRILLIC_KEYS.get(c, c) for c in lowered.replace("'", "").replace("’", ""))
    else:
        reduced = "".join(_LATIN_LETTERS.get(c, c) for c in lowered)
        reduced = "".join(c for c in unicodedata.normalize("NFKD", reduced) if not unicodedata.combining(c))
        reduced = _SPELLING.sub(lambda m: _SPELLINGS[m.group(0)], reduced)
    reduced = reduced.replace("ie", "e")
    return _DOUBLES.sub(r"\1", reduced)


def name_key(word: str) -> str | None:
    """The key of a name-like word as written, else None (see the module docstring)."""
    if not looks_like_name(word):
        return None
    key = spelling(word)
    if not word.isupper():
        key = _without_ending(key)
    return key if len(key) >= _MIN_KEY and key.isalpha() else None


def script(word: str) -> str:
    """``C`` for a word in Cyrillic letters, else ``L``: the tag of its name key."""
    return "C" if _CYRILLIC.search(word) else "L"


def tagged(word: str) -> str:
    """The name key of a word of an article, tagged with its script (``Cselensk``), or ""."""
    key = name_key(word)
    return script(word) + key if key else ""


def romanised(word: str) -> bool:
    """Whether a Latin word ends like a romanised Ukrainian or Russian name (``Budanov``)."""
    return _ROMANISED.search(word) is not None


def phrase_names(written: list[str], *, explicit: bool) -> tuple[tuple[str, ...], ...]:
    """The tagged name keys a name written in a rule meets, one tuple per script.

    A name the rule writes in Latin letters meets Cyrillic words by key (``Zelenskyy``,
    ``Зеленського``) but Latin words only as written: folding Latin spellings into each
    other on real text joins far too many ordinary words (``Frank`` and ``France``,
    ``Mark`` and ``Marco``: ADR 0015). Three kinds of name meet both scripts: a
    Cyrillic one, a name of the ``aliases:`` table (``explicit``; ``Selenskyjs``), and
    one whose last word ends like a romanised Ukrainian or Russian name (-sky, -skyi,
    -ski, -ov, -ova, -ev, -enko, -chuk, -yuk, -ovych, -iv: ``Budanov`` meets
    ``Budanow``, ``Syrskyi`` meets ``Syrsky``).
    """
    keys = [phrase_key(w) for w in written]
    if not written or not all(keys):
        return ()
    latin_only = all(script(w) == "L" for w in written)
    tags = ("C",) if latin_only and not (explicit or romanised(written[-1])) else ("C", "L")
    return tuple(tuple(tag + str(k) for k in keys) for tag in tags)


def phrase_key(word: str) -> str | None:
    """The key of a word of a name written in a rule or an alias (any letter case)."""
    return name_key(word[:1].upper() + word[1:]) if word[:1].islower() else name_key(word)


def _without_ending(key: str) -> str:
    if key.endswith("s") and len(key) > _MIN_STEM + 1:
        key = key[:-1]
    for ending in _ENDINGS:
        stem = key[: -len(ending)]
        if key.endswith(ending) and len(stem) >= _MIN_STEM and stem[-1] not in _VOWELS:
            if ending in _FEMININE and stem.endswith(("sk", "Tk")):
                return stem + "a"
            key = stem
            break
    if key.endswith("iv") and len(key) >= _MIN_STEM:
        key = key[:-2] + "ov"
    return key
