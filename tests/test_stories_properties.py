"""Properties of story assignment on arbitrary input: it never raises, it is
deterministic, and the work per article is bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.stories import MemoryIndex, StoryArticle, StoryAssigner, UniformStats, WordfreqStats, extract
from monitor.stories.assign import DEFAULT_CANDIDATES
from monitor.stories.features import MAX_LEAD, MAX_NAMES, MAX_NUMBERS, MAX_WORDS

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
