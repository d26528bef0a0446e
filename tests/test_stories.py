"""Story assignment: golden cases on real ECB+ articles, and the decision's pieces."""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

import pytest

from monitor.stories import (
    MemoryIndex,
    StoryArticle,
    StoryAssigner,
    UniformStats,
    WordfreqStats,
    add_article,
    base_language,
    evidence,
    extract,
    new_story,
    story_terms,
)
from monitor.stories.decide import _core_names, core_names
from monitor.stories.index import MAX_POSTINGS
from monitor.stories.state import norm
from tests.corpora import corpus

T0 = datetime(2013, 5, 1, 12, tzinfo=UTC)
STATS = WordfreqStats()


@cache
def _articles() -> dict[str, dict[str, Any]]:
    with gzip.open(corpus("stories") / "articles.jsonl.gz", "rt", encoding="utf-8") as lines:
        return {a["id"]: a for a in map(json.loads, lines)}


def real(article_id: str, published: datetime | None = None) -> StoryArticle:
    """A corpus article (dev topics only: the test half is for the benchmark)."""
    a = _articles()[article_id]
    assert a["split"] == "dev"
    return StoryArticle(a["id"], a["title"], a["body"], published, a["outlet"], a["lang"])


def assigner(**kw: Any) -> StoryAssigner:
    return StoryAssigner(MemoryIndex(), STATS, **kw)


# --- golden: real articles -----------------------------------------------------------

TARA_REID = ["ecbplus:1_1ecb", "ecbplus:1_2ecb", "ecbplus:1_3ecb"]  # 2008: Tara Reid checks into Promises
LOHAN = "ecbplus:1_1ecbplus"  # 2013: Lindsay Lohan checks into rehab: the sibling event


def test_rewrites_of_one_event_join_one_story():
    a = assigner()
    stories = {a.assign(real(i)).story.id for i in TARA_REID}
    assert stories == {TARA_REID[0]}


def test_the_sibling_event_of_the_same_kind_starts_its_own_story():
    a = assigner()
    for i in TARA_REID:
        a.assign(real(i))
    sibling = a.assign(real(LOHAN))
    assert sibling.created
    assert sibling.story.id == LOHAN
    why = sibling.explanation
    assert why.candidate == TARA_REID[0]
    assert why.score < a.threshold
    assert "lohan" in why.conflicting_names
    assert "reid" in why.missing_names


REGGIE_BUSH = ["ecbplus:25_10ecb", "ecbplus:25_11ecb", "ecbplus:25_12ecb"]  # Saints put Bush on IR
PIERRE_THOMAS = ["ecbplus:25_10ecbplus", "ecbplus:25_11ecbplus", "ecbplus:25_13ecbplus"]  # later, Thomas


def test_a_sibling_with_the_same_team_and_the_same_act_keeps_its_own_story():
    a = assigner()
    assert {a.assign(real(i)).story.id for i in REGGIE_BUSH} == {REGGIE_BUSH[0]}
    first = a.assign(real(PIERRE_THOMAS[0]))
    assert first.created
    assert first.explanation.candidate == REGGIE_BUSH[0]
    assert {"bush", "reggie"} <= set(first.explanation.missing_names)
    later = [a.assign(real(i)) for i in PIERRE_THOMAS[1:]]
    assert {done.story.id for done in later} == {PIERRE_THOMAS[0]}


def test_a_joined_article_says_what_it_shares():
    a = assigner()
    a.assign(real(TARA_REID[0]))
    joined = a.assign(real(TARA_REID[1]))
    assert not joined.created
    assert {"reid", "tara"} <= set(joined.explanation.shared_names)
    assert joined.explanation.score >= a.threshold
    assert joined.story.articles == 2


@pytest.mark.parametrize(
    ("gap", "joins"),
    [(timedelta(days=3), True), (timedelta(days=7), True), (timedelta(days=10), False)],
    ids=["follow-up-3d-joins", "at-the-window-joins", "after-the-window-new-story"],
)
def test_a_follow_up_joins_only_inside_the_window(gap, joins):
    a = assigner(window=timedelta(days=7))
    a.assign(real(TARA_REID[1], T0))
    follow_up = a.assign(real(TARA_REID[2], T0 + gap))
    assert follow_up.created is not joins


def test_the_window_counts_from_the_last_article_not_the_first():
    a = assigner(window=timedelta(days=7))
    a.assign(real(TARA_REID[0], T0))
    a.assign(real(TARA_REID[1], T0 + timedelta(days=6)))
    late = a.assign(real(TARA_REID[2], T0 + timedelta(days=12)))
    assert not late.created
    assert late.story.first_seen == T0
    assert late.story.last_seen == T0 + timedelta(days=12)


def test_expire_forgets_closed_stories():
    a = assigner(window=timedelta(days=7))
    a.assign(real(TARA_REID[0], T0))
    assert a.expire(T0 + timedelta(days=6)) == 0
    assert a.expire(T0 + timedelta(days=8)) == 1
    assert len(a.index) == 0


# --- features ------------------------------------------------------------------------


def sig_of(title: str, text: str, lang: str = "en", key: str = "k"):
    return extract(StoryArticle(key, title, text, None, None, lang), STATS)


@pytest.mark.parametrize(
    ("text", "names", "not_names"),
    [
        ("A publicist says Tara Reid entered Promises.", {"tara", "reid", "tara reid", "promises"}, {"a"}),
        ("Reid said so. Then Reid left.", set(), {"then"}),  # sentence-initial only: no proof
        ("He met Reid. Reid said no.", {"reid"}, set()),  # once a name, also at a sentence start
        ("The Kremlin's spokesman spoke.", {"kremlin"}, {"kremlin's", "the"}),
        ("Удар по Києву: заявив Зеленський вчора.", {"києву", "зеленський"}, {"удар"}),
        ("Er sprach mit Olaf Scholz in Berlin.", {"olaf", "scholz", "olaf scholz", "berlin"}, {"er"}),
        ("Tara Reid entered rehab in Malibu.", {"tara", "reid", "tara reid", "malibu"}, {"entered"}),
        ("They met Jack. Ketsoyan said no.", {"jack"}, {"jack ketsoyan"}),  # a stop ends a run
        ("Fans in the crowd saw Tara 33 Reid on the stage.", {"tara", "reid"}, {"tara reid"}),  # a number too
        ("An aide to Tara Reid The Times said so.", {"tara reid"}, {"the", "times", "reid the"}),
    ],
    ids=[
        "run-and-singles",
        "only-sentence-initial",
        "initial-after-known",
        "possessive",
        "cyrillic",
        "german",
        "run-at-sentence-start",
        "stop-ends-run",
        "number-ends-run",
        "common-word-ends-run",
    ],
)
def test_names_are_capitalised_words_that_do_not_start_a_sentence(text, names, not_names):
    found = {t for t, _ in sig_of("", text, "uk" if "Києву" in text else "en").names}
    assert names <= found
    assert not (not_names & found)


def test_a_title_case_line_in_the_body_proves_no_names():
    sig = sig_of("", "Lohan Checks Into Betty Ford Clinic Again\nHer lawyer says Lindsay Lohan is in rehab.")
    names = {t for t, _ in sig.names}
    assert {"lohan", "lindsay"} <= names
    assert not {"checks", "clinic", "again", "betty"} & names


def test_a_word_the_article_also_writes_in_lower_case_is_no_name():
    text = "Officials said the Planning rules changed. The planning office and planning staff agreed."
    names = {t for t, _ in sig_of("", text).names}
    assert "planning" not in names


def test_numbers_are_their_own_channel_and_headline_capitals_prove_nothing():
    sig = sig_of("Quake Of 5.6 Hits Qeshm", "A quake of magnitude 5.6 hit the island of Qeshm, killing 10.")
    assert {"5.6", "10"} <= {t for t, _ in sig.numbers}
    names = {t for t, _ in sig.names}
    assert "qeshm" in names
    assert "hits" not in names and "quake" not in names
    assert "qeshm" in sig.lead


def test_vectors_are_bounded_and_unit_length():
    def alpha(i: int) -> str:
        return "".join("abcdefghijklmnopqrstuvwxyz"[int(d)] for d in str(i))

    text = " ".join(f"Then zor{alpha(i)} met Kel{alpha(i)} on day {i}." for i in range(2000))
    sig = sig_of("t", text)
    assert 0 < len(sig.words) <= 64 and 0 < len(sig.names) <= 32 and 0 < len(sig.numbers) <= 16
    for vector in (sig.words, sig.names, sig.numbers):
        assert math.isclose(norm(vector), 1.0)
        weights = [w for _, w in vector]
        assert weights == sorted(weights, reverse=True)


@pytest.mark.parametrize(
    ("code", "base"),
    [("en", "en"), ("en-US", "en"), ("uk_UA", "uk"), ("", "und"), ("x", "und"), ("12", "und")],
    ids=["plain", "region", "underscore", "empty", "short", "digits"],
)
def test_base_language(code, base):
    assert base_language(code) == base


def test_common_words_weigh_little_and_unknown_languages_still_work():
    english = STATS.zipf_table("en-GB")
    assert english["the"] > 7.0 and "qeshm" not in english
    assert STATS.zipf_table("xx") == {}
    assert sig_of("", "Der Vertrag wurde in Genf unterzeichnet.", "zz").names


# --- state, index, decision ----------------------------------------------------------


def test_a_story_counts_articles_and_names_and_keeps_known_times():
    one = sig_of("Reid in rehab", "A publicist says Tara Reid entered Promises.")
    story = new_story(one)
    assert story.articles == 1 and story.first_seen is None and story.last_seen is None
    dated = extract(StoryArticle("k2", "Reid", "Actress Tara Reid is in Promises.", T0, None, "en"), STATS)
    both = add_article(story, dated)
    assert both.articles == 2 and both.first_seen == T0 == both.last_seen
    assert dict(both.name_counts)["reid"] == 2
    assert both.is_open(None, 0) and both.is_open(T0 + timedelta(days=1), 86_400)
    assert not both.is_open(T0 + timedelta(days=2), 86_400)


def test_what_scoring_keeps_on_a_story_state_never_outlives_that_state():
    one = sig_of("", "Officials said Jack Ketsoyan met the press in Malibu on Friday.")
    story = new_story(one)
    assert core_names(story) == _core_names(story) and story.memo  # kept on first use
    other = sig_of("", "Officials said Lindsay Lohan and Jack Ketsoyan left Malibu at night.", key="k2")
    grown = add_article(story, other)
    assert not grown.memo  # a new state derives its own
    for sig in (one, other):
        assert evidence(sig, grown) == evidence(sig, grown) and core_names(grown) == _core_names(grown)
    evidence(other, story)
    assert "lohan" in cast(frozenset[str], grown.memo["names"])
    assert "lohan" not in cast(frozenset[str], story.memo["names"])


def test_evidence_separates_a_rewrite_from_a_sibling():
    story = new_story(
        sig_of("Reid in rehab", "A publicist says Tara Reid checked into Promises rehab in Malibu.")
    )
    rewrite = evidence(
        sig_of("Tara Reid rehab", "Actress Tara Reid entered Promises in Malibu for rehab."), story
    )
    sibling = evidence(
        sig_of("Lohan in rehab", "Her lawyer says Lindsay Lohan checked into Betty Ford rehab."), story
    )
    assert rewrite.probability() > 0.5 > sibling.probability()
    assert sibling.lead_missing == 1.0 and sibling.core_missing > 0


def test_a_different_year_is_a_conflict_that_grows_with_the_gap():
    story = new_story(sig_of("Quake", "In 2008 a quake hit Qeshm island, the 2008 quake was strong."))
    far = evidence(sig_of("Quake", "In 2003 a quake hit Qeshm island."), story)
    near = evidence(sig_of("Quake", "In 2007 a quake hit Qeshm island."), story)
    same = evidence(sig_of("Quake", "The 2008 quake hit Qeshm island."), story)
    assert far.year_conflict == 1.0 > near.year_conflict > same.year_conflict == 0.0


def test_the_publication_year_conflicts_with_a_story_told_in_another_year():
    story = new_story(sig_of("Patch", "Microsoft shipped the 2008 patch for Internet Explorer in 2008."))

    def dated(year: int) -> StoryArticle:
        return StoryArticle(
            "k", "Patch", "Microsoft shipped a patch for Internet Explorer.", T0.replace(year=year)
        )

    assert evidence(extract(dated(2013), STATS), story).year_conflict == 1.0
    assert evidence(extract(dated(2008), STATS), story).year_conflict == 0.0


def test_candidates_are_bounded_and_ranked_by_shared_weight():
    index = MemoryIndex()
    for i in range(MAX_POSTINGS - 2):
        index.put(new_story(sig_of("x", f"Officials in Qeshm met Governor {'Zab' + 'o' * i}.", key=f"k{i}")))
    query = [("n:qeshm", 1.0), ("n:zabooo", 0.5)]
    found = index.candidates(query, 5)
    assert len(found) == 5
    assert "zabooo" in dict(found[0].names)


def test_a_posting_list_keeps_only_the_latest_stories():
    index = MemoryIndex()
    for i in range(MAX_POSTINGS + 10):
        index.put(
            new_story(extract(StoryArticle(f"k{i:03}", "", "Talks in Qeshm ended.", None), UniformStats()))
        )
    found = index.candidates([("n:qeshm", 1.0)], 1000)
    assert len(found) == MAX_POSTINGS
    assert "k000" not in {s.id for s in found}


def test_expire_drops_postings_too():
    index = MemoryIndex()
    old = new_story(extract(StoryArticle("old", "", "Talks in Qeshm ended.", T0), STATS))
    undated = new_story(extract(StoryArticle("undated", "", "Talks in Qeshm ended.", None), STATS))
    index.put(old)
    index.put(undated)
    assert "n:qeshm" in story_terms(old)
    assert index.expire(T0 + timedelta(seconds=1)) == 1
    assert [s.id for s in index.candidates([("n:qeshm", 1.0)], 10)] == ["undated"]
    assert index.get("old") is None


def test_two_headlines_that_share_one_term_are_two_stories():
    a = assigner()
    a.assign(StoryArticle("a", "ATACMS strike reported", "ATACMS strike reported", T0))
    other = a.assign(StoryArticle("b", "Another ATACMS delivery", "Another ATACMS delivery", T0))
    assert other.created
    same = a.assign(StoryArticle("c", "ATACMS strike reported", "ATACMS strike reported again", T0))
    assert not same.created and same.story.id == "a"


def test_a_closed_story_is_never_joined_even_when_identical():
    a = assigner(window=timedelta(days=1))
    text = "A publicist says Tara Reid checked into Promises rehab in Malibu."
    a.assign(StoryArticle("a", "Reid", text, T0))
    again = a.assign(StoryArticle("b", "Reid", text, T0 + timedelta(days=2)))
    assert again.created and again.explanation.considered == 0
