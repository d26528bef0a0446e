"""Dates stated in an article: golden sentences from the ECB+ story set (dev topics),
edge cases, how far apart two sets of dates lie, and that arbitrary text never breaks it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.stories import (
    MemoryIndex,
    StoryArticle,
    StoryAssigner,
    WordfreqStats,
    evidence,
    extract,
    new_story,
)
from monitor.stories.dates import DATE_SLACK, DATE_SPAN, date_conflict, date_terms, day_gap, parse_term

SEP_2012 = datetime(2012, 9, 19, 11, 47, tzinfo=UTC)
SEP_2013 = datetime(2013, 9, 26, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "published", "terms"),
    [
        pytest.param(  # ecbplus:11_1ecbplus
            "Parliamentary elections in Turkmenistan which are planned for December 15, 2013, will be"
            " held on a two-party basis.\nThe start of the campaign for this election will be announced"
            " on October 5, 2013, in Turkmenistan.\nNomination of candidates for the national parliament"
            " will take place from October 16 to November 14.",
            SEP_2013,
            ["2013-12-15", "2013-10-05", "2013-10-16", "2013-11-14"],
            id="month-day-year-and-year-from-publication",
        ),
        pytest.param(  # ecbplus:27_7ecbplus
            "Wed, Sep 19 2012 at 11:47 AM\nMicrosoft will push out an out-of-cycle Windows patch ..."
            " Trustworthy Computing director Yunsun Wee said in a blog posting on Sept. 18.",
            SEP_2012,
            ["2012-09-19", "2012-09-18"],
            id="abbreviated-months",
        ),
        pytest.param(  # ecbplus:27_10ecb, undated
            "shortly following Microsoft's \u201cPatch Tuesday\u201d monthly security bulletin"
            " release Dec. 9",
            None,
            ["--12-09"],
            id="undated-keeps-month-and-day",
        ),
        pytest.param(  # ecbplus:11_4ecb's dateline, undated
            "Voting for MPs to Majlis (Parliament) began in Turkmenistan on Dec.14.",
            None,
            ["--12-14"],
            id="no-space-after-the-dot",
        ),
        pytest.param(  # ecbplus:11_5ecbplus
            "Turkeminstan's CEC plans to hold elections on December 15 2013",
            SEP_2013,
            ["2013-12-15"],
            id="year-without-comma",
        ),
        pytest.param(
            "Published on 18th September 2013; the vote of 15 of May, and 2013-09-26.",
            SEP_2013,
            ["2013-09-18", "2013-05-15", "2013-09-26"],
            id="day-first-and-iso",
        ),
        pytest.param(
            "Talks resume on Jan. 3 after the holidays.",
            datetime(2012, 12, 28, tzinfo=UTC),
            ["2013-01-03"],
            id="nearest-year-across-new-year",
        ),
        pytest.param(
            "They may 5 times over; in march 12 people; May 35; February 30, 2013; the 2008 season.",
            SEP_2013,
            [],
            id="no-date",
        ),
        pytest.param("29 February", None, ["--02-29"], id="leap-day-without-a-year"),
        pytest.param(
            "29 Feb", datetime(2002, 1, 1, tzinfo=UTC), ["--02-29"], id="leap-day-far-from-a-leap-year"
        ),
        pytest.param("Київ, 15 травня 2013 року; 北京 2013年5月15日", SEP_2013, [], id="other-languages"),
    ],
)
def test_stated_dates(text: str, published: datetime | None, terms: list[str]) -> None:
    assert date_terms(text, published) == terms


def test_dates_are_number_terms_of_the_signature() -> None:
    article = StoryArticle("k", "Vote set for December 15, 2013", "Campaign opens on October 5.", SEP_2013)
    numbers = dict(extract(article, WordfreqStats()).numbers)
    assert numbers["2013-12-15"] > numbers["2013-10-05"]  # the title's count twice


@pytest.mark.parametrize(
    ("term", "parsed"),
    [
        ("2013-09-17", (2013, 9, 17)),
        ("--12-14", (None, 12, 14)),
        ("2013", None),
        ("5.6", None),
        ("2013-02-30", None),
    ],
)
def test_parse_term(term: str, parsed: tuple[int | None, int, int] | None) -> None:
    assert parse_term(term) == parsed


def test_day_gap_and_conflict() -> None:
    assert day_gap([(2013, 9, 17)], [(2012, 9, 19), (2013, 9, 20)]) == 3
    assert day_gap([(None, 12, 30)], [(2008, 1, 2)]) == 3  # the calendar wraps
    assert day_gap([], [(2013, 1, 1)]) is None
    assert date_conflict(None) == 0.0
    assert date_conflict(DATE_SLACK) == 0.0
    assert date_conflict(DATE_SLACK + DATE_SPAN) == 1.0
    assert 0.0 < date_conflict(DATE_SLACK + DATE_SPAN // 2) < 1.0


def test_a_report_dated_months_from_the_story_conflicts() -> None:
    stats = WordfreqStats()
    story = new_story(
        extract(StoryArticle("a", "Quake hits Qeshm", "A quake hit Qeshm Island.", SEP_2013), stats)
    )
    later = StoryArticle("b", "Quake hits Qeshm", "A quake hit Qeshm Island.", SEP_2013 + timedelta(days=150))
    same = StoryArticle("c", "Quake hits Qeshm", "A quake hit Qeshm Island.", SEP_2013 + timedelta(days=2))
    assert evidence(extract(later, stats), story).date_conflict == 1.0
    assert evidence(extract(same, stats), story).date_conflict == 0.0


@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(
            st.sampled_from(["Dec.", "December", "14", "31", "2013", ",", "of", "29", "Feb", "-", "09", " "]),
            max_size=20,
        ).map(" ".join),
    ),
    st.one_of(st.none(), st.datetimes()),
)
def test_never_raises_and_every_term_parses_back(text: str, published: datetime | None) -> None:
    terms = date_terms(text, published)
    assert len(terms) <= 16
    assert all(parse_term(t) is not None for t in terms)


def test_an_explanation_names_the_dates_that_conflict() -> None:
    assigner = StoryAssigner(MemoryIndex(), WordfreqStats())
    body = "Parliamentary elections in Turkmenistan are planned for {}, the Central Election Commission said."
    assigner.assign(StoryArticle("a", "Turkmenistan sets vote", body.format("December 14, 2008"), None))
    later = assigner.assign(
        StoryArticle("b", "Turkmenistan sets vote", body.format("December 15, 2013"), None)
    )
    why = later.explanation
    assert why.evidence is not None and why.evidence.date_conflict == 1.0
    assert why.conflicting_dates == ("2013-12-15", "2008-12-14")
