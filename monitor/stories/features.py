"""What an article says, as three small weighted term vectors: words, names, numbers.

Pure and language-agnostic where it can be: tokens are Unicode words (``\\w``, any
script) and digit groups; a *name* is a capitalised word that is not the first of its
sentence and not a common word of the article's language (Kyiv, Зеленський, Qeshm),
and a run of such words is also kept whole (``tara reid``). Numbers (``5.6``, ``2008``,
``10``) are their own channel: they tell two quakes or two matches apart. Scripts
without letter case (Chinese, Arabic, Hebrew) yield no names, and German capitalises
every noun (the common-word filter removes only the frequent ones): see ADR 0014.

Every vector is cut to its strongest terms and scaled to unit length, so the cost and
the size of a signature are bounded whatever the article's length.
"""

from __future__ import annotations

import math
import re
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, count
from operator import itemgetter

from monitor.stories.background import MAX_IDF, UNSEEN_ZIPF, TermStats

Vector = tuple[tuple[str, float], ...]
"""Terms with weights, strongest first (ties by term), unit length."""

_TOKEN = re.compile(r"([.!?…:;\"“”«»„()\[\]|\n]\s*)?(\d+(?:[.,:]\d+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)*)")
_POSSESSIVE = re.compile(r"['\u2019][sS]$")
YEAR = re.compile(r"(?:19[5-9]\d|20[0-4]\d)")

MAX_TOKENS = 400  # body tokens read: the lead and the first paragraphs state the event
BODY_CHARS = MAX_TOKENS * 20  # where reading stops, whatever the text's length
LEAD_TOKENS = 40  # names this early (or in the title) are what the article is about
TITLE_BOOST = 2.0
MAX_WORD_ZIPF = MAX_IDF - 2.0  # words commoner than this (the, said, would) are not features
NAME_MAX_ZIPF = 5.0  # a capitalised word this common (The, But, Monday) is not a name
NAME_BASE = 2.0
HEADLINE_CAPITALS = 0.75  # a body line with this share of capitalised words is a headline
HEADLINE_TOKENS = 30  # ... and no longer than this
MAX_WORDS, MAX_NAMES, MAX_NUMBERS, MAX_LEAD = 64, 32, 16, 3


@dataclass(frozen=True, slots=True)
class StoryArticle:
    """The parts of an article that story assignment reads."""

    key: str
    title: str
    text: str
    published: datetime | None = None  # None: unknown (the window does not apply)
    outlet: str | None = None
    lang: str = "en"


@dataclass(frozen=True, slots=True)
class Signature:
    """An article reduced to bounded weighted vectors (see the module docstring)."""

    key: str
    lang: str
    published: datetime | None
    words: Vector
    names: Vector
    numbers: Vector
    lead: tuple[str, ...]  # the article's main single-word names, most informative first
    name_words: frozenset[str] = field(default_factory=frozenset)  # every word of every name
    lookup: tuple[Mapping[str, float], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        """Term -> weight maps of words, names, numbers, for scoring many stories fast."""
        if not self.lookup:
            maps = (dict(self.words), dict(self.names), dict(self.numbers))
            object.__setattr__(self, "lookup", maps)


@dataclass(frozen=True, slots=True)
class Lexicon:
    """What reading an article asks of a language's Zipf table, derived from it once:
    set lookups and a ready idf instead of a Zipf comparison per token (``lexicon``)."""

    zipf: Mapping[str, float]
    common: frozenset[str]  # above MAX_WORD_ZIPF: never a word feature (the, said)
    common_names: frozenset[str]  # NAME_MAX_ZIPF or above: never a name (The, But)
    idf: Mapping[str, float]  # MAX_IDF - Zipf, never below 0, of every word listed

    @classmethod
    def of(cls, table: Mapping[str, float]) -> Lexicon:
        return cls(
            zipf=table,
            common=frozenset(w for w, z in table.items() if z > MAX_WORD_ZIPF),
            common_names=frozenset(w for w, z in table.items() if z >= NAME_MAX_ZIPF),
            idf={w: max(0.0, MAX_IDF - z) for w, z in table.items()},
        )


UNSEEN_IDF = max(0.0, MAX_IDF - UNSEEN_ZIPF)
_NO_WEIGHTS: Mapping[str, float] = {}  # every number weighs its default, 1
_LEXICONS: dict[int, Lexicon] = {}  # by id() of a table the Lexicon holds, so the id stays its own
_LEXICONS_KEPT = 32  # tables are per language: a few; a stats object that makes one per call churns
_LEXICONS_LOCK = threading.Lock()
_NO_LEXICON = Lexicon.of({})


def lexicon(table: Mapping[str, float]) -> Lexicon:
    """The Lexicon of ``table``, derived once per table object (``TermStats`` tables are
    fixed once returned). An empty table (a language without one) needs no derivation."""
    if not table:
        return _NO_LEXICON
    with _LEXICONS_LOCK:
        found = _LEXICONS.get(id(table))
        if found is not None and found.zipf is table:
            return found
    made = Lexicon.of(table)
    with _LEXICONS_LOCK:
        if len(_LEXICONS) >= _LEXICONS_KEPT:
            _LEXICONS.pop(next(iter(_LEXICONS)))
        _LEXICONS[id(table)] = made
    return made


@dataclass
class _Counts:
    """Mutable tallies while one article is read."""

    words: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    names: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    numbers: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    lead: set[str] = field(default_factory=set)
    initial: list[str] = field(default_factory=list)  # capitalised sentence-initial words


def extract(article: StoryArticle, stats: TermStats) -> Signature:
    """The signature of one article (pure; any text, any language, never raises)."""
    lang = article.lang or "und"
    table = lexicon(stats.zipf_table(lang))
    counts = _Counts()
    _read_body(article.text, table, counts)
    for word in counts.initial:  # "Reid said ..." once "Reid" is known to be a name
        if word in counts.names:
            counts.names[word] += 1
    _read_title(article.title, table, counts)

    # A run of names (``tara reid``) weighs the most; a single name is never a common word
    # (Zipf under NAME_MAX_ZIPF), so its idf is MAX_IDF - Zipf, never clamped.
    idf_of = table.idf.get
    name_idf = {n: NAME_BASE + (MAX_IDF if " " in n else idf_of(n, UNSEEN_IDF)) for n in counts.names}
    return Signature(
        key=article.key,
        lang=lang,
        published=article.published,
        words=_vector(counts.words, table.idf.get, UNSEEN_IDF, MAX_WORDS),
        names=_vector(counts.names, name_idf.get, 0.0, MAX_NAMES),
        numbers=_vector(counts.numbers, _NO_WEIGHTS.get, 1.0, MAX_NUMBERS),
        lead=tuple(sorted(counts.lead, key=lambda n: (-name_idf[n], n))[:MAX_LEAD]),
        name_words=frozenset(w for n in counts.names for w in n.split(" ")),
    )


def _token(raw: str) -> tuple[str, str]:
    """The token without a possessive ending, and lower-cased."""
    if "'" in raw or "\u2019" in raw:
        raw = _POSSESSIVE.sub("", raw) or raw
    return raw, raw.lower()


def _read_body(text: str, table: Lexicon, counts: _Counts) -> None:
    """Tally words, names (single and runs) and numbers of the first MAX_TOKENS tokens.

    The hottest code of story assignment (every matched article, 400 tokens), so no
    Python loop runs per token: words and numbers are tallied from one Counter of the
    distinct tokens, and only the capitalised tokens (a few in ten) walk the name runs.
    A run is consecutive capitalised tokens; anything else between two ends it.
    """
    raws, starts = _body_tokens(text)
    lows = list(map(str.lower, raws))
    if text.find("'", 0, BODY_CHARS) >= 0 or text.find("\u2019", 0, BODY_CHARS) >= 0:  # many texts have none
        for i in [i for i, raw in enumerate(raws) if "'" in raw or "\u2019" in raw]:
            lows[i] = _token(raws[i])[1]  # a possessive ending comes off
    words, numbers, common = counts.words, counts.numbers, table.common
    for low, n in Counter(lows).items():
        if low[0].isdigit():
            numbers[low] += n
        elif low not in common:
            words[low] += n
    _read_names(raws, lows, starts, table, counts)


def _read_names(raws: list[str], lows: list[str], starts: set[int], table: Lexicon, counts: _Counts) -> None:
    """Names, single and in runs, from the capitalised tokens (``_read_body``)."""
    lowered_of, common = Counter(filter(str.islower, raws)).get, table.common_names
    names, lead, initial = counts.names, counts.lead, counts.initial
    run: list[str] = []
    tentative = False  # run[0] began a sentence: a name only if a name follows it
    previous = -2
    for position in compress(count(), map(str.isupper, map(itemgetter(0), raws))):
        low = lows[position]
        if low in common or lowered_of(low, 0) >= 2:
            continue  # a common word, or one the article writes in lower case: no name
        if position != previous + 1:  # something that is no name came between
            _close_run(run, counts)
            run, tentative = [], False
        previous = position
        if position not in starts:
            if tentative:
                names[run[0]] += 1
                tentative = False
            names[low] += 1
            run.append(low)
            if position < LEAD_TOKENS:
                lead.add(low)
        else:
            _close_run(run, counts)
            run, tentative = [low], True
            initial.append(low)
    _close_run(run, counts)


def _body_tokens(text: str) -> tuple[list[str], set[int]]:
    """The first MAX_TOKENS tokens, and the positions that start a sentence: after a
    stop, first of a line, or anywhere in a headline line."""
    raws: list[str] = []
    starts: set[int] = set()
    for line in text[:BODY_CHARS].split("\n"):
        found = _TOKEN.findall(line)[: MAX_TOKENS - len(raws)]
        if not found:
            continue
        base = len(raws)
        line_raws = list(map(itemgetter(1), found))
        if _headline(line_raws):
            starts.update(range(base, base + len(found)))
        else:
            starts.add(base)
            starts.update(compress(count(base), map(itemgetter(0), found)))  # after a stop
        raws += line_raws
        if len(raws) >= MAX_TOKENS:
            break
    return raws, starts


def _headline(line: list[str]) -> bool:
    """A line in title case (a headline or a byline kept in the body): its capitals prove
    nothing, as in the title."""
    if len(line) > HEADLINE_TOKENS:
        return False
    letters = [raw for raw in line if not raw[0].isdigit()]
    return len(letters) >= 4 and sum(raw[0].isupper() for raw in letters) >= HEADLINE_CAPITALS * len(letters)


def _close_run(run: list[str], counts: _Counts) -> None:
    """A run of two or more names is also one name of its own."""
    if len(run) > 1:
        counts.names[" ".join(run)] += 1


def _read_title(title: str, table: Lexicon, counts: _Counts) -> None:
    """Title words count TITLE_BOOST times; a title word is a name when the body says so
    (headlines capitalise every word, so their capitals prove nothing)."""
    for _, raw in _TOKEN.findall(title[:1000]):
        _, low = _token(raw)
        if low[0].isdigit():
            counts.numbers[low] += TITLE_BOOST
        elif low in counts.names:
            counts.names[low] += TITLE_BOOST
            counts.lead.add(low)
            counts.words[low] += TITLE_BOOST
        elif low not in table.common:
            counts.words[low] += TITLE_BOOST


def _vector(
    tally: Mapping[str, float], weight: Callable[[str, float], float], default: float, limit: int
) -> Vector:
    """Sublinear tf times the term's weight (``weight(term, default)``, a mapping's get);
    the strongest ``limit``; unit length."""
    log = math.log
    scored = [(-(1.0 + log(n)) * weight(t, default), t) for t, n in tally.items() if n > 0]
    scored.sort()  # (-weight, term): a plain tuple sort, strongest first, ties by term
    while scored and scored[-1][0] >= 0:  # no weight: not a feature
        scored.pop()
    top = scored[:limit]
    norm = math.sqrt(sum([w * w for w, _ in top])) or 1.0
    intern = sys.intern  # one copy of a term across stories
    return tuple([(intern(t), -w / norm) for w, t in top])
