"""Which language an article is in, and which languages a rule phrase may be in.

Articles (``detect``): the script decides the family, then

- Cyrillic: Ukrainian when its own letters (і ї є ґ) outnumber Russian's (ы э ъ ё),
  else Russian; function words (та, що, від / и, что, это) break a tie;
- Arabic script: Arabic, unless letters that only Persian or Urdu use (پ چ ژ گ ی ے ...)
  are common, then no language of ours (None);
- Latin: the language whose function words (the, der, le, el, się, il, o, de, ve...)
  and letters (ß, ł, ş, ñ, ã...) are most frequent in the first few hundred words;
  English when no language clearly wins (a bare title such as "ATACMS strikes").

Measured against py3langid and lingua on the labelled set of ``bench/languages.py``
(ADR 0015): as accurate on news text, and about a hundred times faster, because it
only counts words. Phrases (``phrase_languages``) are too short for any detector:
they get every language their letters allow.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from monitor.language.codes import ARABIC, CYRILLIC, LATIN
from monitor.language.forms import fold

_SAMPLE = 600
"""Characters of an article's text that decide its language (title and lead first):
about a hundred words, a few dozen of them function words in news prose."""

_WORDS_SAMPLE = 60
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]")
_UKRAINIAN = re.compile("[іїєґІЇЄҐ]")
_RUSSIAN = re.compile("[ыэъёЫЭЪЁ]")
_NOT_ARABIC = re.compile("[پچژگکیےںہٹڈڑۓۀ]")
_TOKEN = re.compile(r"\w+")

_FUNCTION_WORDS: dict[str, str] = {
    "en": "the of and to in is that for on was with said as by at from it his an be has have were "
    "after which who will are this their they not but had been its over would",
    "de": "der die das und den dem des ist nicht ein eine einer einem einen mit von auf für sich auch "
    "wurde wurden nach bei aus dass sind zum zur im am hat haben sagte werden wie oder gegen über",
    "fr": "le la les des du de et est une un dans pour qui que sur au aux par pas avec ont été sont ce "
    "cette selon mais il elle ils plus lors après entre a",
    "es": "el la los las del de y en que un una por con para es se su sus al fue han ha según como "
    "más pero tras entre sobre este esta dijo",
    "pl": "i w na z się do że nie jest to o od po przez dla oraz jak ale został została które który "
    "która już także jego ich czy między roku według przy we",
    "it": "il lo la gli le di del della dei delle e è un una per con che non in sono ha hanno nel "
    "nella al alla dal dalla ma anche secondo tra dopo stato",
    "pt": "o a os as do da dos das de e em no na nos nas um uma que para com por não foi são ao à "
    "pelo pela segundo mas também entre após disse",
    "nl": "de het een en van in is dat op te met voor zijn niet aan er om ook als bij door werd "
    "worden naar maar heeft hebben nog uit over tussen na",
    "tr": "ve bir bu için ile da de olarak olan daha çok gibi en ancak sonra kadar değil ise her ki "
    "göre tarafından arasında yapılan dedi açıkladı",
    "uk": "і й та що не на в у з до від для як це його її про після також було був була які який "
    "яка під між через щодо заявив повідомив є",
    "ru": "и не на в с что по от для как это его ее её о после также было был была которые который "
    "которая под между через заявил сообщил",
}

_LETTERS: dict[str, tuple[str, ...]] = {
    "ß": ("de",), "ä": ("de",), "ö": ("de", "tr"), "ü": ("de", "tr"),
    "ł": ("pl",), "ą": ("pl",), "ę": ("pl",), "ś": ("pl",), "ź": ("pl",), "ż": ("pl",), "ć": ("pl",),
    "ń": ("pl",), "ğ": ("tr",), "ş": ("tr",), "ı": ("tr",), "ñ": ("es",), "ã": ("pt",), "õ": ("pt",),
    "ç": ("fr", "pt", "tr"), "è": ("fr", "it"), "ê": ("fr", "pt"), "œ": ("fr",), "ì": ("it",),
    "ò": ("it",), "á": ("es", "pt"), "í": ("es", "pt"), "ó": ("es", "pt", "pl"), "ú": ("es", "pt"),
}  # fmt: skip
_LETTERS_IN = re.compile("[" + "".join(_LETTERS) + "]")
_LETTER_WEIGHT = 0.3
_ENDINGS: dict[str, str] = {
    "en": "ing tion ed ly ness",
    "de": "ung ungen keit heit schaft lich isch chen tz",
    "fr": "eau eaux aux ement ique ées",
    "es": "cion ciones dad idad ados adas ando",
    "pl": "ow ych ami ego owa owie osc cie nia",
    "it": "zione zioni ali ato ati ata ino mente",
    "pt": "cao coes oes ao ados agem",
    "nl": "heid lijk ijk eren aan oor",
    "tr": "lar ler nin nın dan den yla yle sı si",
    "uk": "ського ська ськии ться ння",
    "ru": "ского ская скии тся ние нии",
}
"""Word endings (folded) that speak for a language: titles have few function words."""
_ENDING_WEIGHT = 0.4
_ENDING_OF = {
    ending: tuple(code for code, endings in _ENDINGS.items() if ending in endings.split())
    for endings in _ENDINGS.values()
    for ending in endings.split()
}
_ENDING_SIZES = sorted({len(e) for e in _ENDING_OF}, reverse=True)
_ENOUGH = 0.4
_CLEAR = 4.0
"""Function words enough to decide without endings and letters (twice the next)."""
_LONG_WORD = 5


def _table() -> dict[str, tuple[str, ...]]:
    """Folded function word -> the languages that use it (``sie``: German, Polish ``się``)."""
    table: dict[str, list[str]] = {}
    for language, words in _FUNCTION_WORDS.items():
        for word in words.split():
            languages = table.setdefault(fold(word), [])
            if language not in languages:
                languages.append(language)
    return {word: tuple(languages) for word, languages in table.items()}


_WORDS = _table()
_fold = lru_cache(maxsize=100_000)(fold)
"""``fold`` remembered per word, as the engine's word cache does."""


def detect(text: str) -> str | None:
    """The language of a text (an article's title first); None when it is in none of ours."""
    sample = text[:_SAMPLE]
    return detect_words([_fold(w) for w in _TOKEN.findall(sample)], sample)


def detect_words(words: Sequence[str], sample: str) -> str | None:
    """The language of an article from its first words, folded (``monitor.language.fold``),
    and the raw text they come from (its script and letters count too)."""
    words = words[:_WORDS_SAMPLE]
    if sample.isascii():  # the common case, decided by function words alone
        return _best(_scores(words, "", LATIN), default="en")
    scripts = Counter(_script(w) for w in words)
    latin, cyrillic, arabic = scripts["latin"], scripts["cyrillic"], scripts["arabic"]
    if not latin and not cyrillic and not arabic:
        return None
    if arabic > latin and arabic > cyrillic:
        letters = len(_ARABIC.findall(sample))
        return None if len(_NOT_ARABIC.findall(sample)) * 50 > letters else "ar"
    if cyrillic > latin:
        return _cyrillic(sample, words)
    return _best(_scores(words, sample, LATIN), default="en")


def _script(word: str) -> str:
    first = word[:1]
    if "\u0400" <= first <= "\u04ff":
        return "cyrillic"
    if "\u0600" <= first <= "\u06ff" or "\ufb50" <= first <= "\ufeff":
        return "arabic"
    return "latin" if first.isalpha() else "other"


def _cyrillic(sample: str, words: Sequence[str]) -> str:
    own = len(_UKRAINIAN.findall(sample)) - len(_RUSSIAN.findall(sample))
    if own:
        return "uk" if own > 0 else "ru"
    return _best(_scores(words, "", CYRILLIC), default="ru")


def _scores(words: Sequence[str], sample: str, candidates: tuple[str, ...]) -> dict[str, float]:
    """Evidence for each candidate: function words; then, when they leave it open (a
    title), telling endings and letters."""
    scores = dict.fromkeys(candidates, 0.0)
    for languages, n in Counter(filter(None, map(_WORDS.get, words))).items():
        _add(scores, languages, n)
    first, second = sorted(scores.values(), reverse=True)[:2] if len(scores) > 1 else (1.0, 0.0)
    if first >= _CLEAR and first >= 2 * second:
        return scores
    endings = (_ending(w) for w in words if len(w) >= _LONG_WORD)
    for languages, n in Counter(filter(None, endings)).items():
        _add(scores, languages, n * _ENDING_WEIGHT)
    if sample:
        for letter, n in Counter(_LETTERS_IN.findall(sample.lower())).items():
            _add(scores, _LETTERS[letter], n * _LETTER_WEIGHT)
    return scores


def _ending(word: str) -> tuple[str, ...] | None:
    for size in _ENDING_SIZES:
        languages = _ENDING_OF.get(word[-size:])
        if languages:
            return languages
    return None


def _add(scores: dict[str, float], languages: tuple[str, ...], weight: float) -> None:
    share = weight / len(languages)
    for language in languages:
        if language in scores:
            scores[language] += share


def _best(scores: dict[str, float], *, default: str) -> str:
    """The clear winner: some evidence (a telling ending at least), ahead of the next."""
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (language, score), runner_up = ranked[0], ranked[1][1] if len(ranked) > 1 else 0.0
    return language if score >= _ENOUGH and score > runner_up else default


def phrase_languages(text: str) -> tuple[str, ...]:
    """Every language a rule phrase may be in, from its letters alone.

    Latin letters: every Latin-script language; Cyrillic: Ukrainian and Russian, or one
    of them when the phrase has a letter only that one uses (і ї є ґ / ы э ъ ё); Arabic
    script: Arabic. A phrase mixing scripts gets the languages of each.
    """
    found: list[str] = []
    if _LATIN.search(text):
        found += LATIN
    if _CYRILLIC.search(text):
        uk, ru = bool(_UKRAINIAN.search(text)), bool(_RUSSIAN.search(text))
        found += ("uk",) if uk and not ru else ("ru",) if ru and not uk else CYRILLIC
    if _ARABIC.search(text):
        found += ARABIC
    return tuple(found)
