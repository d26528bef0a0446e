"""text: feed HTML -> plain text for rules and snippets; one-line strings for subjects and logs."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import (
    as_windows_1252,
    ascii_int,
    clean,
    collapse_whitespace,
    html_to_text,
    one_line,
    plain_text,
)

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")  # C1 too


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        # block elements keep words from neighbouring blocks apart
        pytest.param("<p>Kyiv</p><p>Strikes</p>", "Kyiv\nStrikes", id="paragraphs"),
        pytest.param("Kyiv<p>Strikes</p>", "Kyiv\nStrikes", id="text-then-block"),
        pytest.param("<p>Kyiv</p>Strikes", "Kyiv\nStrikes", id="block-then-text"),
        pytest.param("<b>Kharkiv</b><div>Shelling</div>", "Kharkiv\nShelling", id="inline-then-block"),
        pytest.param("one<br>two<br/>three", "one\ntwo\nthree", id="br"),
        pytest.param("<ul><li>Kharkiv</li><li>Sumy</li></ul>", "Kharkiv\nSumy", id="list"),
        pytest.param("<table><tr><td>Kyiv</td><td>75</td></tr></table>", "Kyiv\n75", id="table"),
        pytest.param(
            "<h2>NATO</h2><blockquote>Self-defense</blockquote>", "NATO\nSelf-defense", id="heading-quote"
        ),
        pytest.param("<div><p>nested</p></div>", "nested", id="nested"),
        pytest.param("<p>a</p>\n\n\n<p>b</p>", "a\nb", id="blank-lines-between"),
        # inline elements do not split words
        pytest.param(
            "AT<b>ACMS</b> and <a href='/x'>prisoner</a> <em>exchange</em>",
            "ATACMS and prisoner exchange",
            id="inline-joins",
        ),
        # script, style and friends are not text
        pytest.param(
            "<p>Berlin</p><script>window.track('7637655');</script><p>Kyiv</p>", "Berlin\nKyiv", id="script"
        ),
        pytest.param("<style>.teaser{color:red}</style>Teaser", "Teaser", id="style"),
        pytest.param("<noscript>Enable JavaScript</noscript>Story", "Story", id="noscript"),
        pytest.param("<template><p>hidden</p></template>shown", "shown", id="template"),
        pytest.param(
            "<html><head><title>Page</title></head><body><p>Body</p></body></html>",
            "Body",
            id="document-head",
        ),
        pytest.param("<html><head><title>Only a head</title></head></html>", "", id="document-without-body"),
        pytest.param("<svg><title>icon</title></svg>Caption", "Caption", id="svg-title"),
        pytest.param("<p>Seen</p><!-- a comment -->tail", "Seen\ntail", id="comment"),
        # entities
        pytest.param("Germany &amp; US", "Germany & US", id="amp"),
        pytest.param("&lt;p&gt; is a tag", "<p> is a tag", id="escaped-tag"),
        pytest.param("alliance&#8217;s &#x201C;right&#x201D;", "alliance’s “right”", id="numeric"),
        pytest.param("caf&eacute; &mdash; na&iuml;ve", "café — naïve", id="named"),
        pytest.param("near&nbsp;Kharkiv", "near Kharkiv", id="nbsp"),
        pytest.param("AT&T & more", "AT&T & more", id="bare-ampersand"),
        # control characters and stray bytes
        pytest.param("Kyiv\x00Strikes", "Kyiv Strikes", id="nul"),
        pytest.param("<p>Kyiv\x07\x1b</p>", "Kyiv", id="controls-only-text"),
        pytest.param("lone\ud800surrogate<br>", "lone surrogate", id="lone-surrogate"),
        pytest.param("tab\tand\r\nCRLF", "tab and\nCRLF", id="tab-crlf"),
        # plain text passes through with whitespace collapsed
        pytest.param("Plain teaser, no markup.", "Plain teaser, no markup.", id="plain"),
        pytest.param("  spaced   out \n\n  lines  ", "spaced out\nlines", id="plain-whitespace"),
        pytest.param("5 < 7 but 9 > 8", "5 < 7 but 9 > 8", id="plain-angle-brackets"),
        pytest.param("", "", id="empty"),
        pytest.param("   \n\t ", "", id="blank"),
        # malformed HTML
        pytest.param("<p>unclosed <b>bold", "unclosed bold", id="unclosed"),
        pytest.param("</p>stray close", "stray close", id="stray-close"),
        pytest.param("<p>a</div>b</span>c", "abc", id="mismatched"),
        pytest.param("<", "<", id="lone-lt"),
        pytest.param("<div", "", id="unfinished-tag"),
        pytest.param("<![CDATA[raw]]>x", "x", id="cdata"),
        pytest.param(
            '<?xml version="1.0" encoding="utf-8"?><p>Declared</p>', "Declared", id="xml-declaration"
        ),
        pytest.param("<body><p>a</p></body><p>after body</p>", "a\nafter body", id="after-body"),
        pytest.param(
            "Kyiv<P>Strikes</P><DiV>Odesa</DiV>Lviv<BR>Dnipro",
            "Kyiv\nStrikes\nOdesa\nLviv\nDnipro",
            id="upper-case-blocks",
        ),
        pytest.param(
            "<svg><foreignObject><P>Kyiv</P>Odesa</foreignObject></svg>", "Kyiv\nOdesa", id="block-inside-svg"
        ),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("Why the <script> tag matters", "Why the <script> tag matters"),
        ("Turnout < 50% & falling", "Turnout < 50% & falling"),
        ("&amp; stays literal", "&amp; stays literal"),
        ("Two\n\n\nparagraphs", "Two\nparagraphs"),
        ("NUL\x00and\x1fcontrols", "NUL and controls"),
        ("  ", ""),
    ],
    ids=["tag-like", "lt-amp", "entity-like", "paragraphs", "controls", "blank"],
)
def test_plain_text_is_taken_literally(raw: str, text: str) -> None:
    assert plain_text(raw) == text


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a\xa0b", "a b"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("  a  \n  \n  b  ", "a\nb"),
    ],
    ids=["nbsp", "line-endings", "blank-lines"],
)
def test_collapse_whitespace(raw: str, text: str) -> None:
    assert collapse_whitespace(raw) == text


_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


def _collapse_by_regex(text: str) -> str:
    """The regular-expression version collapse_whitespace replaced: the reference."""
    text = _SPACES.sub(" ", text.replace("\r", "\n").replace("\xa0", " "))
    return _BLANK_LINES.sub("\n", text).strip()


_WHITESPACE = [chr(c) for c in range(0x3000 + 1) if chr(c).isspace()] + ["\x00", "\u200b", "\ufeff"]


@given(st.text(alphabet=st.sampled_from([*_WHITESPACE, "a", "b", "é", "Ж"])) | st.text())
def test_collapse_whitespace_agrees_with_the_regular_expressions(raw: str) -> None:
    """Every Unicode whitespace character, and near misses (NUL, zero-width space, BOM)."""
    assert collapse_whitespace(raw) == _collapse_by_regex(raw)


@pytest.mark.parametrize(
    ("text", "limit", "line"),
    [
        ("NATO leader supports\nalliance’s right", 300, "NATO leader supports alliance’s right"),
        ("  padded\r\n\ttext  ", 300, "padded text"),
        ("bell\x07and\x00nul", 300, "bell and nul"),
        ("abcdefghij", 10, "abcdefghij"),
        ("abcdefghijk", 10, "abcdefghi…"),
        ("abcd efghijk", 6, "abcd…"),
        ("Zelenskyy announces prisoner exchange", 20, "Zelenskyy announces…"),
        ("", 10, ""),
    ],
    ids=["newline", "whitespace", "controls", "at-limit", "one-over", "cut-after-space", "headline", "empty"],
)
def test_one_line(text: str, limit: int, line: str) -> None:
    assert one_line(text, limit) == line
    assert len(one_line(text, limit)) <= limit


def test_one_line_default_limit_is_300() -> None:
    assert one_line("x" * 300) == "x" * 300
    assert one_line("x" * 301) == "x" * 299 + "…"


MARKUP_BITS = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<script>",
        "</script>",
        "<html>",
        "<head>",
        "</head>",
        "<body>",
        "<br>",
        "&amp;",
        "&#0;",
        "&#xD800;",
        "&#1;",
        "&#x1b",
        "&#127;",
        "&#99999999999;",
        "&#x110000;",
        "<div>",
        "<li>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<title>",
        "<div",
        ">",
        "&",
        "<",
        "\x00",
        "\ud800",
    ]
)


@given(st.one_of(st.text(), st.lists(st.one_of(st.text(max_size=5), MARKUP_BITS), max_size=12).map("".join)))
def test_html_to_text_always_gives_clean_text(markup: str) -> None:
    text = html_to_text(markup)
    assert not CONTROL.search(text)
    assert text == text.strip()
    assert "\n\n" not in text
    line = one_line(markup, 40)
    assert len(line) <= 40
    assert "\n" not in line and not CONTROL.search(line)
    assert not CONTROL.search(plain_text(markup))
    cleaned = clean(markup)
    assert len(cleaned) == len(markup) and not CONTROL.search(
        cleaned.replace("\t", "").replace("\n", "").replace("\r", "")
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12), ("0012", 12), ("²", None), ("１", None), ("-1", None), ("", None), ("9" * 19, 10**18)],
    ids=["plain", "leading-zeros", "superscript", "fullwidth", "negative", "empty", "over-18-digits"],
)
def test_numbers_in_headers_are_ascii_digits(text: str, expected: int | None) -> None:
    assert ascii_int(text) == expected


def test_clean_replaces_one_for_one() -> None:
    text = "a\x00b\ud800c\x1bd\te\nf"
    assert clean(text) == "a\ufffdb\ufffdc\ufffdd\te\nf"
    assert len(clean(text, " ")) == len(text)


def test_character_references_to_controls_do_not_survive_html_to_text() -> None:
    assert html_to_text("<p>a&#1;b&#x1b;c</p>") == "a b c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("don\x92t", "don’t"),  # windows-1252 read as latin-1: what browsers show
        ("\x93quoted\x94 \x96 dash", "“quoted” – dash"),
        ("\x80 5", "€ 5"),
        ("\x9b31m", "›31m"),  # no escape sequence reaches a terminal
        ("a\x81b\x8dc\x8fd\x90e\x9df", "a b c d e f"),  # undefined in windows-1252
    ],
    ids=["apostrophe", "quotes-dash", "euro", "csi", "undefined"],
)
def test_c1_controls_are_read_as_windows_1252(text: str, expected: str) -> None:
    assert one_line(text) == plain_text(text) == html_to_text(text) == expected
    assert len(clean(text)) == len(text) and clean(text) == as_windows_1252(text, "\ufffd")


def test_references_to_windows_1252_characters_decode_as_browsers_decode_them() -> None:
    """HTML maps "&#146;" to U+2019, not to the control U+0092 (lxml gives the control)."""
    assert html_to_text("<p>don&#146;t &#x9b;31m &#150; dash</p>") == "don’t ›31m – dash"
