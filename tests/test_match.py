"""Rule matching: whole words, any case, punctuation between words, any/all/exclude,
feed globs, fields, and snippets whose highlights point exactly at the matched words."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import WatchRule
from monitor.match import SNIPPET_AFTER, SNIPPET_BEFORE, Matcher
from monitor.models import Entry, Match
from monitor.query.normalize import WORD, analyse
from monitor.query.normalize import words as split_words
from monitor.samples import voa_article
from monitor.text import html_to_text

PUBLISHED = datetime(2024, 5, 31, 17, 42, tzinfo=UTC)
FEED = "VOA News"


def make_entry(title: str = "", summary: str = "", content: str = "") -> Entry:
    """An entry whose plain-text fields are exactly the given strings."""
    return Entry(
        key="k",
        title=title,
        link="https://example.org/a",
        author=None,
        published=PUBLISHED,
        summary_html=summary,
        summary_text=summary,
        content_html=content,
        content_text=content,
    )


def html_entry(summary_html: str) -> Entry:
    """An entry as parse builds it: the rules see html_to_text of the markup."""
    return Entry(
        key="k",
        title="",
        link=None,
        author=None,
        published=PUBLISHED,
        summary_html=summary_html,
        summary_text=html_to_text(summary_html),
        content_html="",
        content_text="",
    )


def make_rule(
    *,
    any: tuple[str, ...] = (),
    all: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    feeds: tuple[str, ...] = (),
    name: str = "r",
    exact: bool = False,
) -> WatchRule:
    return WatchRule(name=name, any=any, all=all, exclude=exclude, feeds=feeds, notify=("c",), exact=exact)


def match_one(rule: WatchRule, entry: Entry, feed: str = FEED) -> Match | None:
    found = Matcher([rule]).match(entry, feed)
    assert len(found) <= 1
    return found[0] if found else None


def assert_highlights_are(found: Match, *expected: str) -> None:
    """The highlighted slices of the snippet, in order, are exactly ``expected``."""
    text = found.snippet.text
    assert [text[s:e] for s, e in found.snippet.highlights] == list(expected)


# --- words -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        pytest.param("ATACMS", "Kyiv fired ATACMS at targets", True, id="word"),
        pytest.param("ATACMS", "ATACMSX is a made-up name", False, id="no-prefix-of-longer-word"),
        pytest.param("ATACMS", "the XATACMS system", False, id="no-suffix-of-longer-word"),
        pytest.param("ATACMS", "ATACMS_2 launcher", False, id="underscore-is-part-of-word"),
        pytest.param("ATACMS", "ATACMS2 launcher", False, id="digit-is-part-of-word"),
        pytest.param("ATACMS", "(ATACMS)", True, id="in-parentheses"),
        pytest.param("ATACMS", "US-made ATACMS.", True, id="before-full-stop"),
        pytest.param("ATACMS", "ATACMS-supplied", True, id="before-hyphen"),
        pytest.param("US", "USA aid", False, id="US-not-in-USA"),
        pytest.param("US", "the US said", True, id="US-alone"),
        pytest.param("F-16", "F-16 jets arrived", True, id="phrase-with-hyphen"),
        pytest.param("F-16", "F-16s arrived", False, id="phrase-with-hyphen-plural"),
        pytest.param("Kharkiv region", "the Kharkiv regional office", False, id="last-word-whole"),
        pytest.param("prisoner exchange", "a prisoner exchange", True, id="two-words"),
        pytest.param("prisoner exchange", "prisoner-exchange", True, id="hyphen-between"),
        pytest.param("prisoner exchange", "prisoner\nexchange", True, id="line-break-between"),
        pytest.param("prisoner exchange", "prisoner — exchange", True, id="em-dash-between"),
        pytest.param("prisoner exchange", "prisoner,\t exchange", True, id="comma-tab-between"),
        pytest.param("prisoner exchange", "prisoner/exchange", True, id="slash-between"),
        pytest.param("prisoner-exchange", "prisoner exchange", True, id="hyphen-in-phrase-space-in-text"),
        pytest.param("prisoner exchange", "prisonerexchange", False, id="glued-words"),
        pytest.param("prisoner exchange", "prisoner of exchange", False, id="word-between"),
        pytest.param("prisoner exchange", "exchange prisoner", False, id="order-matters"),
        pytest.param("prisoner exchange", "prisoners exchange", False, id="plural-is-another-word"),
    ],
)
def test_whole_words_with_exact_word_forms(phrase: str, text: str, expected: bool) -> None:
    rule = make_rule(any=(phrase,), exact=True)
    assert (match_one(rule, make_entry(summary=text)) is not None) is expected


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        pytest.param("prisoner exchange", "prisoners exchange", True, id="plural-of-first-word"),
        pytest.param("prisoner exchange", "prisoner exchanges", True, id="plural-of-last-word"),
        pytest.param("prisoner exchange", "prisoners exchanged", True, id="plural-and-past"),
        pytest.param("Kharkiv region", "the Kharkiv regional office", True, id="derived-word"),
        pytest.param("ATACMS", "ATACMSX is a made-up name", False, id="still-whole-words"),
        pytest.param("prisoner exchange", "exchange prisoners", False, id="order-still-matters"),
        pytest.param("F-16", "F-16s arrived", False, id="no-stem-for-digits"),
    ],
)
def test_english_word_forms_by_default(phrase: str, text: str, expected: bool) -> None:
    assert (match_one(make_rule(any=(phrase,)), make_entry(summary=text)) is not None) is expected


@pytest.mark.parametrize(
    ("phrase", "text"),
    [
        pytest.param("atacms", "Kyiv fired ATACMS", id="lower-phrase-upper-text"),
        pytest.param("ATACMS", "Kyiv fired Atacms", id="upper-phrase-mixed-text"),
        pytest.param("Prisoner Exchange", "PRISONER EXCHANGE AGREED", id="title-case-phrase"),
        pytest.param("Обмін полоненими", "відбувся обмін ПОЛОНЕНИМИ", id="cyrillic"),
        pytest.param("zaporizhzhia", "ZAPORIZHZHIA nuclear plant", id="long-word"),
        pytest.param("ÉCOLE", "une école", id="accented"),
    ],
)
def test_case_insensitive(phrase: str, text: str) -> None:
    assert match_one(make_rule(any=(phrase,)), make_entry(summary=text)) is not None


# --- any / all / exclude -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "entry", "expected"),
    [
        pytest.param(
            make_rule(any=("swap", "exchange")), make_entry(summary="a swap"), True, id="any-one-of-two"
        ),
        pytest.param(
            make_rule(any=("swap", "exchange")), make_entry(summary="a trade"), False, id="any-none"
        ),
        pytest.param(
            make_rule(all=("ATACMS", "Kharkiv")),
            make_entry(summary="ATACMS near Kharkiv"),
            True,
            id="all-present",
        ),
        pytest.param(
            make_rule(all=("ATACMS", "Kharkiv")),
            make_entry(summary="ATACMS near Kyiv"),
            False,
            id="all-one-missing",
        ),
        pytest.param(
            make_rule(all=("ATACMS", "Kharkiv")),
            make_entry(title="Kharkiv", content="ATACMS"),
            True,
            id="all-across-fields",
        ),
        pytest.param(
            make_rule(all=("Black Sea",), any=("grain", "tanker")),
            make_entry(summary="Black Sea grain corridor"),
            True,
            id="all-and-any",
        ),
        pytest.param(
            make_rule(all=("Black Sea",), any=("grain", "tanker")),
            make_entry(summary="Black Sea fleet"),
            False,
            id="all-without-any",
        ),
        pytest.param(
            make_rule(all=("Black Sea",), any=("grain", "tanker")),
            make_entry(summary="grain prices"),
            False,
            id="any-without-all",
        ),
        pytest.param(
            make_rule(all=("ATACMS",), exclude=("opinion",)),
            make_entry(summary="Opinion: ATACMS"),
            False,
            id="excluded",
        ),
        pytest.param(
            make_rule(all=("ATACMS",), exclude=("opinion",)),
            make_entry(title="OPINION", content="ATACMS"),
            False,
            id="excluded-from-another-field",
        ),
        pytest.param(
            make_rule(all=("ATACMS",), exclude=("opinion",), exact=True),
            make_entry(summary="ATACMS: public opinions differ"),
            True,
            id="exclude-is-whole-words-too",
        ),
        pytest.param(
            make_rule(all=("ATACMS",), exclude=("opinion",)),
            make_entry(summary="ATACMS: public opinions differ"),
            False,
            id="exclude-covers-word-forms",
        ),
        pytest.param(
            make_rule(all=("ATACMS",), exclude=("opinion",)),
            make_entry(summary="ATACMS: an opinionpoll"),
            True,
            id="exclude-is-whole-words-by-default",
        ),
        pytest.param(
            make_rule(any=("ATACMS",), exclude=("live blog", "opinion")),
            make_entry(summary="ATACMS — live-blog"),
            False,
            id="exclude-phrase-with-punctuation",
        ),
    ],
)
def test_any_all_exclude(rule: WatchRule, entry: Entry, expected: bool) -> None:
    assert (match_one(rule, entry) is not None) is expected


def test_terms_list_the_matched_phrases_once() -> None:
    rule = make_rule(all=("ATACMS",), any=("Kharkiv", "Kyiv", "Donetsk"))
    found = match_one(rule, make_entry(title="Kyiv: ATACMS", summary="ATACMS over Kharkiv, then Kyiv"))
    assert found is not None
    assert found.rule == "r"
    assert found.terms == ("ATACMS", "Kharkiv", "Kyiv")


def test_every_matching_rule_in_config_order() -> None:
    rules = [
        make_rule(name="third", any=("Kyiv",)),
        make_rule(name="never", any=("Taiwan",)),
        make_rule(name="first", any=("ATACMS",)),
    ]
    found = Matcher(rules).match(make_entry(summary="ATACMS fired from Kyiv"), FEED)
    assert [m.rule for m in found] == ["third", "first"]


# --- feed globs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("globs", "feed", "expected"),
    [
        pytest.param((), "Anything at all", True, id="no-globs-all-feeds"),
        pytest.param(("BBC*",), "BBC World", True, id="prefix-glob"),
        pytest.param(("BBC*",), "bbc world", True, id="case-insensitive-name"),
        pytest.param(("bbc*",), "BBC World", True, id="case-insensitive-glob"),
        pytest.param(("BBC*",), "The BBC", False, id="prefix-glob-elsewhere"),
        pytest.param(("*BBC*",), "The BBC", True, id="infix-glob"),
        pytest.param(("BBC?World",), "BBC World", True, id="single-character"),
        pytest.param(("BBC",), "BBC World", False, id="no-wildcard-is-exact"),
        pytest.param(("BBC World",), "BBC World", True, id="exact-name"),
        pytest.param(("BBC*", "Kyiv*"), "Kyiv Independent", True, id="second-glob"),
        pytest.param(("BBC*", "Kyiv*"), "VOA News", False, id="no-glob-fits"),
    ],
)
def test_feed_globs(globs: tuple[str, ...], feed: str, expected: bool) -> None:
    rule = make_rule(any=("ATACMS",), feeds=globs)
    assert (match_one(rule, make_entry(summary="ATACMS"), feed=feed) is not None) is expected


# --- fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "field", "snippet"),
    [
        pytest.param(make_entry(title="ATACMS fired"), "title", "ATACMS fired", id="title-only"),
        pytest.param(make_entry(summary="ATACMS fired"), "summary", "ATACMS fired", id="summary-only"),
        pytest.param(make_entry(content="ATACMS fired"), "content", "ATACMS fired", id="content-only"),
        pytest.param(
            make_entry(title="ATACMS news", content="Kyiv fired ATACMS"),
            "content",
            "Kyiv fired ATACMS",
            id="content-over-title",
        ),
        pytest.param(
            make_entry(title="ATACMS news", summary="More ATACMS", content="Kyiv fired ATACMS"),
            "summary",
            "More ATACMS",
            id="summary-over-content-and-title",
        ),
        pytest.param(
            make_entry(title="ATACMS news", summary="No word here", content="Kyiv fired ATACMS"),
            "content",
            "Kyiv fired ATACMS",
            id="content-when-summary-misses",
        ),
    ],
)
def test_field_of_the_snippet(entry: Entry, field: str, snippet: str) -> None:
    found = match_one(make_rule(any=("ATACMS",)), entry)
    assert found is not None
    assert (found.field, found.snippet.text) == (field, snippet)
    assert_highlights_are(found, "ATACMS")


def test_snippet_anchor_is_the_earliest_hit_in_the_preferred_field() -> None:
    rule = make_rule(all=("Kharkiv",), any=("ATACMS",))
    found = match_one(rule, make_entry(title="ATACMS", summary="Strikes near Kharkiv", content="ATACMS"))
    assert found is not None
    assert found.field == "summary"
    assert_highlights_are(found, "Kharkiv")


# --- HTML never matches ------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        pytest.param('<p class="ATACMS">Strikes</p>', False, id="class-attribute"),
        pytest.param('<a href="https://e.org/ATACMS" title="ATACMS">link</a>', False, id="link-attributes"),
        pytest.param('<img alt="ATACMS" src="a.png">', False, id="image-alt"),
        pytest.param("<!-- ATACMS -->Strikes", False, id="comment"),
        pytest.param("<script>var ATACMS = 1;</script>Strikes", False, id="script"),
        pytest.param("<style>.ATACMS { color: red }</style>Strikes", False, id="style"),
        pytest.param("<ATACMS>Strikes</ATACMS>", False, id="tag-name"),
        pytest.param("Kyiv fired <b>ATACMS</b>", True, id="bold-text"),
        pytest.param("ATAC<b>MS</b> strikes", True, id="inline-tag-inside-word"),
        pytest.param("Kyiv fired &#65;TACMS", True, id="character-reference"),
        pytest.param("Kyiv</p><p>ATACMS", True, id="paragraph-boundary"),
    ],
)
def test_markup_never_matches(markup: str, expected: bool) -> None:
    assert (match_one(make_rule(any=("ATACMS",)), html_entry(markup)) is not None) is expected


def test_entities_and_paragraphs_between_phrase_words() -> None:
    rule = make_rule(any=("prisoner exchange",))
    assert match_one(rule, html_entry("a prisoner&nbsp;exchange")) is not None
    found = match_one(rule, html_entry("<p>a <em>prisoner</em></p><p>exchange</p>"))
    assert found is not None
    assert_highlights_are(found, "prisoner exchange")


# --- snippets ----------------------------------------------------------------------


def _words(n: int, start: int = 0) -> str:
    return " ".join(f"word{i}" for i in range(start, start + n))


@pytest.mark.parametrize(
    ("text", "leading", "trailing"),
    [
        pytest.param("Kyiv fired ATACMS at dawn.", False, False, id="short-text-whole"),
        pytest.param(f"ATACMS {_words(100)}", False, True, id="match-at-start"),
        pytest.param(f"{_words(100)} ATACMS", True, False, id="match-at-end"),
        pytest.param(f"{_words(100)} ATACMS {_words(100, 100)}", True, True, id="match-in-middle"),
    ],
)
def test_snippet_ellipses_where_cut(text: str, leading: bool, trailing: bool) -> None:
    found = match_one(make_rule(any=("ATACMS",)), make_entry(summary=text))
    assert found is not None
    snippet = found.snippet.text
    assert snippet.startswith("…") is leading
    assert snippet.endswith("…") is trailing
    assert_highlights_are(found, "ATACMS")
    assert len(snippet) <= SNIPPET_BEFORE + len("ATACMS") + SNIPPET_AFTER + 2
    # cut between words, never inside one
    body = snippet.removeprefix("…").removesuffix("…")
    assert f" {body} " in f" {text} "


def test_snippet_marks_every_matched_phrase_in_it() -> None:
    text = "Ukraine fired ATACMS at targets near Kharkiv;\nmore ATACMS followed, a prisoner\nexchange too."
    rule = make_rule(all=("ATACMS",), any=("Kharkiv", "prisoner exchange", "Taiwan"))
    found = match_one(rule, make_entry(summary=text))
    assert found is not None
    assert "\n" not in found.snippet.text
    assert_highlights_are(found, "ATACMS", "Kharkiv", "ATACMS", "prisoner exchange")


def test_overlapping_phrases_become_one_highlight() -> None:
    rule = make_rule(any=("prisoner exchange", "exchange deal"))
    found = match_one(rule, make_entry(summary="a prisoner exchange deal was signed"))
    assert found is not None
    assert_highlights_are(found, "prisoner exchange deal")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("XATACMS" + "-" * 114 + "ATACMS", id="word-cut-at-window-start"),
        pytest.param("ATACMS" + "-" * 174 + "ATACMSX", id="word-cut-at-window-end"),
    ],
)
def test_snippet_never_marks_part_of_a_word_cut_at_its_edge(text: str) -> None:
    """The window may start or end inside a word (no space nearby); that word is not a hit."""
    found = match_one(make_rule(any=("ATACMS",)), make_entry(summary=text))
    assert found is not None
    assert_highlights_are(found, "ATACMS")


# --- the real article --------------------------------------------------------------


def voa_entry(*, with_content: bool = True) -> Entry:
    article = voa_article()
    body = article.body_html() if with_content else ""
    return Entry(
        key=article.link,
        title=article.headline,
        link=article.link,
        author=None,
        published=article.published,
        summary_html=article.teaser,
        summary_text=html_to_text(article.teaser),
        content_html=body,
        content_text=html_to_text(body),
    )


VOA_RULES = [
    make_rule(name="prisoner exchange", any=("prisoner exchange", "prisoner swap")),
    make_rule(name="ATACMS strikes", all=("ATACMS",), exclude=("opinion",)),
    make_rule(name="Taiwan", any=("Taiwan Strait",)),
    make_rule(name="Black Sea shipping", all=("Black Sea",), any=("grain", "shipping")),
]


def test_real_article_matches_deep_in_the_body() -> None:
    found = {m.rule: m for m in Matcher(VOA_RULES).match(voa_entry(), "VOA News")}
    assert list(found) == ["prisoner exchange", "ATACMS strikes"]

    exchange = found["prisoner exchange"]
    assert (exchange.field, exchange.terms) == ("content", ("prisoner exchange",))
    assert "Zelenskyy announced a prisoner exchange with Russia" in exchange.snippet.text
    assert_highlights_are(exchange, "prisoner exchange")

    atacms = found["ATACMS strikes"]
    assert (atacms.field, atacms.terms) == ("content", ("ATACMS",))
    assert "Army Tactical Missile Systems, or ATACMS, has not changed." in atacms.snippet.text
    assert atacms.snippet.text.startswith("…")
    assert_highlights_are(atacms, "ATACMS")


def test_real_article_teaser_alone_matches_nothing() -> None:
    """What DESIGN.md warns about: the watched phrases are not in the headline or teaser."""
    assert Matcher(VOA_RULES).match(voa_entry(with_content=False), "VOA News") == []


# --- properties --------------------------------------------------------------------

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZäöüéçñабвгдеєжзиіїклмнопрстуфхцчшщьюяΑΒΓΔαβγδσ"
SEPARATORS = " \n\t-—–,.;:!?()[]\"'«»/…·"
assert not re.search(r"\w", SEPARATORS)
assert re.fullmatch(r"\w+", LETTERS)

words = st.text(alphabet=LETTERS, min_size=1, max_size=10)
phrases = st.lists(words, min_size=1, max_size=4)
separators = st.text(alphabet=SEPARATORS, min_size=1, max_size=3)


def _found(phrase: str, text: str, *, exact: bool = False) -> Match | None:
    return match_one(make_rule(any=(phrase,), exact=exact), make_entry(summary=text))


@settings(deadline=None)
@given(phrase=phrases, before=st.text(max_size=200), after=st.text(max_size=200), data=st.data())
def test_property_phrase_with_any_punctuation_between_words_is_found(
    phrase: list[str], before: str, after: str, data: st.DataObject
) -> None:
    gaps = [data.draw(separators) for _ in range(len(phrase) + 1)]
    written = gaps[0] + "".join(w + gap for w, gap in zip(phrase, gaps[1:], strict=True))
    found = _found(" ".join(phrase), before + written + after)
    assert found is not None
    assert found.snippet.highlights
    wanted = [analyse(w)[1] for w in phrase]
    for s, e in found.snippet.highlights:
        marked = [analyse(w)[1] for w in split_words(found.snippet.text[s:e])]
        assert len(marked) >= len(wanted) and set(marked) <= set(wanted)


@settings(deadline=None)
@given(
    phrase=phrases,
    glue=st.text(alphabet=LETTERS + "0123456789_", min_size=1, max_size=5),
    at_end=st.booleans(),
    edge=separators,
    data=st.data(),
)
def test_property_phrase_inside_a_longer_word_is_not_found_with_exact_word_forms(
    phrase: list[str], glue: str, at_end: bool, edge: str, data: st.DataObject
) -> None:
    gaps = [data.draw(separators) for _ in range(len(phrase) - 1)]
    written = phrase[0] + "".join(gap + w for gap, w in zip(gaps, phrase[1:], strict=True))
    written = written + glue if at_end else glue + written
    assert _found(" ".join(phrase), edge + written + edge, exact=True) is None


vocabulary = st.sampled_from(
    ["prisoner", "exchange", "ATACMS", "Kyiv", "обмін", "полоненими", "σεισμός", "école"]
)


@settings(deadline=None)
@given(
    phrase=st.lists(vocabulary, min_size=1, max_size=2),
    text_words=st.lists(vocabulary, max_size=12),
    gaps=st.lists(separators, min_size=12, max_size=12),
    change=st.sampled_from([str.upper, str.lower, str.swapcase, str.title, str.capitalize]),
)
def test_property_matching_ignores_case_changes_of_the_text(
    phrase: list[str], text_words: list[str], gaps: list[str], change: Callable[[str], str]
) -> None:
    text = "".join(w + g for w, g in zip(text_words, gaps, strict=False))
    original, changed = _found(" ".join(phrase), text), _found(" ".join(phrase), change(text))
    assert (original is None) == (changed is None)
    if original is not None and changed is not None:
        assert original.snippet.highlights == changed.snippet.highlights


_ASCII_CORNERS = "aZ09_ -.,;:'\"!?()[]{}<>/\\|@#$%^&*+=~`\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00\x7f"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=st.sampled_from(_ASCII_CORNERS)),
        st.text(alphabet=st.characters(max_codepoint=127)),
        st.text(),
    )
)
def test_property_words_of_ascii_text_are_the_regex_words(text: str) -> None:
    """The byte path for ASCII text splits exactly where ``WORD`` does (controls,
    the ASCII separators ``str.split`` knows, ``_`` and digits inside words), so
    tokens, their spans and the query's words keep agreeing."""
    assert split_words(text) == WORD.findall(text)
