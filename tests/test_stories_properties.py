"""Properties of story assignment on arbitrary input: it never raises, it is
deterministic, and the work per article is bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.stories import MemoryIndex, StoryArticle, StoryAssigner, UniformStats, WordfreqStats, extract
from monitor.stories.assign import DEFAULT_CANDIDATES
from monitor.stories.background import MAX_IDF, UNSEEN_ZIPF
from monitor.stories.decide import cosine
from monitor.stories.features import (
    _LEXICONS,
    _LEXICONS_KEPT,
    MAX_LEAD,
    MAX_NAMES,
    MAX_NUMBERS,
    MAX_WORD_ZIPF,
    MAX_WORDS,
    NAME_MAX_ZIPF,
    lexicon,
)

_WORDS = st.sampled_from(
    [
        "Qeshm",
        "quake",
        "Reid",
        "rehab",
        "5.6",
        "2008",
        "Зеленський",
        "Київ",
        "said",
        "the",
        "Berlin",
        "10",
        "'s",
    ]
)
_TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(_WORDS, max_size=60).map(" ".join),
    st.lists(st.sampled_from([". ", " ", "\n", ", ", "’s "]), max_size=5).map("".join),
)
_TIMES = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
        ),
    ),
)
_LANGS = st.one_of(
    st.sampled_from(["en", "uk", "ru", "de", "en-GB", "", "zz", "x-klingon"]), st.text(max_size=8)
)


@st.composite
def articles(draw: st.DrawFn) -> list[StoryArticle]:
    n = draw(st.integers(1, 12))
    return [
        StoryArticle(
            f"k{i}",
            draw(_TEXT),
            draw(_TEXT),
            draw(_TIMES),
            draw(st.none() | st.text(max_size=5)),
            draw(_LANGS),
        )
        for i in range(n)
    ]


def _replay(batch: list[StoryArticle], stats=None) -> list[tuple[str, bool, float]]:
    assigner = StoryAssigner(MemoryIndex(), stats or WordfreqStats())
    out = []
    for article in batch:
        result = assigner.assign(article)
        assert result.explanation.considered <= DEFAULT_CANDIDATES
        assert 0.0 <= result.explanation.score <= 1.0
        assert result.story.articles >= 1
        out.append((result.story.id, result.created, result.explanation.score))
    return out


@settings(max_examples=150, deadline=None)
@given(articles())
def test_assignment_never_raises_and_is_deterministic(batch):
    first = _replay(batch)
    assert first == _replay(batch)
    assert first[0][1]  # the first article always starts a story
    assert {story for story, _, _ in first} <= {a.key for a in batch}


@settings(max_examples=100, deadline=None)
@given(_TEXT, _TEXT, _LANGS)
def test_signatures_are_bounded_for_any_text(title, text, lang):
    for stats in (WordfreqStats(), UniformStats()):
        sig = extract(StoryArticle("k", title, text * 20, None, None, lang), stats)
        assert len(sig.words) <= MAX_WORDS and len(sig.names) <= MAX_NAMES
        assert len(sig.numbers) <= MAX_NUMBERS and len(sig.lead) <= MAX_LEAD


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["Qeshm quake", "Reid rehab", "Berlin talks"]), min_size=1, max_size=30))
def test_candidates_stay_bounded_however_many_similar_stories(titles):
    assigner = StoryAssigner(MemoryIndex(), UniformStats(), threshold=1.01)  # never join: many stories
    for i, title in enumerate(titles):
        result = assigner.assign(StoryArticle(f"k{i}", title, f"Officials in {title} met again.", None))
        assert result.created
        assert result.explanation.considered <= 4


_TERMS = st.sampled_from([f"t{i}" for i in range(12)])
_WEIGHTS = st.floats(min_value=1e-6, max_value=10.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TERMS, _WEIGHTS), st.dictionaries(_TERMS, _WEIGHTS), st.floats(0.1, 20.0))
def test_a_cosine_is_the_plain_sum_over_the_article_terms_in_their_order(article, centroid, length):
    """``cosine`` intersects the keys in C and adds up in the article's order only when
    more than two terms are shared (two add up alike either way): the same float, bit for
    bit, as the plain sum in the article's order."""
    plain = sum([w * centroid[t] for t, w in article.items() if t in centroid]) / length
    assert cosine(article, centroid, length) == plain


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.floats(0.0, 8.0, allow_nan=False), max_size=30), _TEXT, _TEXT)
def test_the_lexicon_reads_an_article_as_the_zipf_table_does(table, title, text):
    """What ``extract`` derives from a Zipf table (sets of common words, a ready idf) gives
    the vectors the table's own comparisons give (checked here against those rules)."""
    lex = lexicon(table)
    assert lexicon(table) is lex  # derived once per table
    for word, zipf in table.items():
        assert (word in lex.common) == (zipf > MAX_WORD_ZIPF)
        assert (word in lex.common_names) == (zipf >= NAME_MAX_ZIPF)
        assert lex.idf[word] == max(0.0, MAX_IDF - zipf)
    sig = extract(StoryArticle("k", title, text, None, None, "en"), _Fixed(table))
    for term, _ in sig.words:
        assert table.get(term, UNSEEN_ZIPF) <= MAX_WORD_ZIPF or term in sig.name_words


class _Fixed:
    """TermStats of one given table."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    def zipf_table(self, lang: str) -> dict[str, float]:
        return self.table


def test_tables_made_afresh_on_every_call_do_not_grow_the_lexicon_cache():
    stats = UniformStats()  # a new empty table each call
    for i in range(200):
        extract(StoryArticle(f"k{i}", "Talks", "Officials in Qeshm met.", None), stats)
        extract(
            StoryArticle(f"k{i}", "Talks", "Officials in Qeshm met.", None), _Fixed({"qeshm": 1.0 + i / 100})
        )
    assert len(_LEXICONS) <= _LEXICONS_KEPT
