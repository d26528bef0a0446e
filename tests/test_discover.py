"""discover: which feeds a page advertises, and whether a body is a feed already."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.discover import Alternate, absolute, alternates, feed_kind, json_feed_title
from monitor.errors import ParseError
from monitor.models import Fetched
from monitor.parse import parse

DATA = Path(__file__).parent / "data"
PAGE = "https://news.example.org/world/index.html"


def _page(head: str, body: str = "") -> bytes:
    return f"<!DOCTYPE html><html><head><title>t</title>{head}</head><body>{body}</body></html>".encode()


RSS = "application/rss+xml"
ATOM = "application/atom+xml"

ALTERNATES = [
    pytest.param(
        '<link rel="alternate" type="application/rss+xml" title="World" href="/world/rss.xml">'
        '<link rel="alternate" type="application/atom+xml" title="All" href="https://cdn.example.net/all.atom">',
        [
            Alternate("World", "https://news.example.org/world/rss.xml", RSS),
            Alternate("All", "https://cdn.example.net/all.atom", ATOM),
        ],
        id="relative-and-absolute-in-document-order",
    ),
    pytest.param(
        '<link rel="alternate" type="application/rss+xml" href="feed.xml">',
        [Alternate(None, "https://news.example.org/world/feed.xml", RSS)],
        id="relative-to-the-page-directory-untitled",
    ),
    pytest.param(
        '<base href="https://static.example.org/feeds/">'
        '<link rel="alternate" type="application/rss+xml" href="world.xml">',
        [Alternate(None, "https://static.example.org/feeds/world.xml", RSS)],
        id="base-href",
    ),
    pytest.param(
        '<link rel="alternate" type="application/rss+xml" title="A" href="/rss.xml">'
        '<link rel="alternate" type="application/rss+xml" title="A again" href="https://news.example.org/rss.xml#top">',
        [Alternate("A", "https://news.example.org/rss.xml", RSS)],
        id="duplicates-once-fragment-dropped",
    ),
    pytest.param(
        '<link rel="Alternate Feed" type="Application/RSS+XML; charset=utf-8" '
        'title="  Top\n stories " href="/t.xml">'
        '<link rel="alternate" type="application/feed+json" href="/feed.json">'
        '<link rel="alternate" type="application/json" href="/items.json">',
        [
            Alternate("Top stories", "https://news.example.org/t.xml", RSS),
            Alternate(None, "https://news.example.org/feed.json", "application/feed+json"),
            Alternate(None, "https://news.example.org/items.json", "application/json"),
        ],
        id="case-params-whitespace-json",
    ),
    pytest.param(
        '<link rel="stylesheet" type="text/css" href="/s.css">'
        '<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">'
        '<link rel="alternate" href="/no-type.xml">'
        '<link rel="self" type="application/rss+xml" href="/self.xml">'
        '<link rel="alternate" type="application/rss+xml">'
        '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
        '<link rel="alternate" type="application/rss+xml" href="mailto:news@example.org">',
        [],
        id="not-feeds",
    ),
    pytest.param(
        '<link rel="alternate" type="application/rss+xml" href="feed://news.example.org/a.xml">'
        '<link rel="alternate" type="application/rss+xml" href="feed:https://news.example.org/b.xml">',
        [
            Alternate(None, "http://news.example.org/a.xml", RSS),
            Alternate(None, "https://news.example.org/b.xml", RSS),
        ],
        id="feed-scheme",
    ),
]


@pytest.mark.parametrize(("head", "expected"), ALTERNATES)
def test_alternates(head: str, expected: list[Alternate]) -> None:
    assert alternates(_page(head), PAGE) == expected


def test_links_in_the_body_are_not_advertised_feeds() -> None:
    body = '<p>Subscribe: <link rel="alternate" type="application/rss+xml" href="/late.xml"></p>'
    assert alternates(_page("", body), PAGE) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n", id="blank"),
        pytest.param(b"\x00\x01\x02", id="binary"),
        pytest.param(b"just some text", id="text"),
    ],
)
def test_no_document_no_alternates(body: bytes) -> None:
    assert alternates(body, PAGE) == []


def test_a_real_article_page() -> None:
    page = (DATA / "html-page.html").read_bytes()
    assert alternates(page, "https://www.voanews.com/a/nato/7637578.html") == [
        Alternate("Europe", "https://www.voanews.com/api/zrqiteuuir", RSS)
    ]


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY a%d "%s">' % (i, (b"&a%d;" % (i - 1) if i > 1 else b"&a;") * 10) for i in range(1, 10)
    )
    + b']><rss version="2.0"><channel><title>&a9;</title></channel></rss>'
)

KINDS = [
    pytest.param((DATA / "rss2.xml").read_bytes(), None, "rss", id="rss2"),
    pytest.param((DATA / "atom.xml").read_bytes(), None, "atom", id="atom"),
    pytest.param((DATA / "rdf.xml").read_bytes(), None, "rdf", id="rdf"),
    pytest.param((DATA / "latin1.xml").read_bytes(), None, "rss", id="latin1"),
    pytest.param(b"\xef\xbb\xbf\n<!-- hi --><rss/>", "text/html", "rss", id="bom-comment-mislabelled"),
    pytest.param(b"<rdf:RDF><channel/></rdf:RDF>", None, "rdf", id="undeclared-prefix"),
    pytest.param(BILLION_LAUGHS, None, "rss", id="entities-not-expanded"),
    pytest.param(
        json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": []}).encode(),
        "application/json",
        "json",
        id="json-feed",
    ),
    pytest.param(b'{"title": "J", "items": []}', "application/feed+json", "json", id="json-by-type"),
    pytest.param(b'{"title": "J"}', "application/feed+json", None, id="json-by-type-without-items"),
    pytest.param(
        b'{"version": "http://jsonfeed.org/version/1", "title": "J", "items": []}',
        "application/json",
        "json",
        id="json-feed-1.0-http-version",
    ),
    pytest.param(
        json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": []}).encode("utf-16"),
        "application/feed+json",
        "json",
        id="utf-16-json-feed-served-as-json",
    ),
    pytest.param(
        json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": []}).encode("utf-32"),
        "application/json; charset=utf-32",
        "json",
        id="utf-32-json-feed-served-as-json",
    ),
    pytest.param(
        json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": []}).encode("utf-16"),
        "text/html",
        None,
        id="utf-16-json-feed-served-as-html",
    ),
    pytest.param(b'{"title": "J", "items": []}', "application/json", None, id="plain-json"),
    pytest.param(b"[1, 2]", None, None, id="json-array"),
    pytest.param(
        b" " * 100 + b'{"version": "https://jsonfeed.org/version/1.1", "items": []}',
        "text/plain",
        "json",
        id="json-feed-after-100-spaces",
    ),
    pytest.param(
        (DATA / "rss2.xml").read_bytes().decode().encode("utf-16"),
        "application/json",
        None,
        id="utf-16-rss-served-as-json",
    ),
    pytest.param(b"{not json", None, None, id="broken-json"),
    pytest.param((DATA / "html-page.html").read_bytes(), None, None, id="html"),
    pytest.param(b"<html><head></head></html>", "application/rss+xml", None, id="html-labelled-rss"),
    pytest.param(b"<opml version='2.0'/>", None, None, id="other-xml"),
    pytest.param(b"", None, None, id="empty"),
    pytest.param(b"<<<" * 1000, None, None, id="garbage"),
]


@pytest.mark.parametrize(("body", "content_type", "kind"), KINDS)
def test_feed_kind(body: bytes, content_type: str | None, kind: str | None) -> None:
    assert feed_kind(body, content_type) == kind


@pytest.mark.parametrize(
    ("body", "title"),
    [
        pytest.param(
            b'{"version": "https://jsonfeed.org/version/1", "title": " My\\nBlog ", "items": []}',
            "My Blog",
            id="title",
        ),
        pytest.param(
            b'{"version": "https://jsonfeed.org/version/1", "title": 7, "items": []}', None, id="not-text"
        ),
        pytest.param(b'{"version": "https://jsonfeed.org/version/1", "title": "x"}', None, id="no-items"),
        pytest.param(b'{"version": "https://jsonfeed.org/version/1"}', None, id="none"),
        pytest.param(b'{"title": "x"}', None, id="not-a-json-feed"),
    ],
)
def test_json_feed_title(body: bytes, title: str | None) -> None:
    assert json_feed_title(body) == title


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("../rss", "https://news.example.org/rss"),
        ("//other.example.org/x.xml", "https://other.example.org/x.xml"),
        ("  /spaced.xml  ", "https://news.example.org/spaced.xml"),
        ("ftp://news.example.org/x.xml", None),
        ("http:///no-host", None),
        ("", None),
        ("http://[::1/rss", None),
        ("//[::1", None),
        ("http://\u2100/rss", None),
        ("http://news\x00.example.org/rss", None),
        ("/world/\nrss.xml", "https://news.example.org/world/rss.xml"),
        ("/world/\trss.xml", "https://news.example.org/world/rss.xml"),
    ],
    ids=[
        "parent",
        "scheme-relative",
        "spaced",
        "ftp",
        "no-host",
        "empty",
        "broken-ipv6",
        "broken-ipv6-scheme-relative",
        "host-changes-under-nfkc",
        "nul",
        "wrapped-line",
        "tab",
    ],
)
def test_absolute(href: str, expected: str | None) -> None:
    assert absolute(href, PAGE) == expected


def test_one_broken_link_never_hides_the_other_feeds_of_a_page() -> None:
    """``http://[::1`` made urllib raise ValueError, which ``feeds add`` showed as a traceback."""
    head = (
        '<base href="http://[::1">'
        '<link rel="alternate" type="application/rss+xml" title="Broken" href="http://[::1/rss">'
        '<link rel="alternate" type="application/rss+xml" title="World" href="/world/rss.xml">'
    )
    assert alternates(_page(head), PAGE) == [
        Alternate("World", "https://news.example.org/world/rss.xml", RSS)
    ]


HREFS = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda a, b: a + b,
        st.sampled_from(["http://", "https://", "//", "feed:", "/", "http://[", "?"]),
        st.text(max_size=30),
    ),
)


CHARSETS = st.one_of(
    st.none(),
    st.sampled_from(["utf-8", "windows-1251", "utf-16", "utf-7", "rot13", "base64", "idna", "x"]),
    st.text(max_size=20),
).map(lambda label: None if label is None else f"text/html; charset={label}")


@settings(max_examples=300, deadline=None)
@given(
    hrefs=st.lists(HREFS, max_size=5),
    base=st.one_of(st.none(), HREFS),
    junk=st.binary(max_size=200),
    titles=st.lists(st.text(max_size=30), max_size=5),
    content_type=CHARSETS,
)
def test_any_page_gives_web_addresses_or_nothing(
    hrefs: list[str], base: str | None, junk: bytes, titles: list[str], content_type: str | None
) -> None:
    """Whatever a page's links, base, titles and charset say, ``alternates`` returns
    http(s) addresses with a host and no control character, each once, with one-line
    titles that can be a name in the config; ``feed_kind`` never raises either."""
    links = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="{html.escape(h)}" title="{html.escape(t)}">'
        for h, t in zip(hrefs, [*titles, *[""] * len(hrefs)], strict=False)
    )
    base_tag = "" if base is None else f'<base href="{html.escape(base)}">'
    page = _page(base_tag + links) + junk
    found = alternates(page, PAGE, content_type)
    assert len({a.url for a in found}) == len(found)
    for alternate in found:
        parts = urlsplit(alternate.url)
        assert parts.scheme in ("http", "https") and parts.hostname
        assert not any(ord(c) < 0x20 or c == "\x7f" for c in alternate.url)
        title = alternate.title or ""
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in title) and title == title.strip()
    feed_kind(page)
    feed_kind(junk)


_NEWS = '<link rel="alternate" type="application/rss+xml" title="Новини" href="/rss">'


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (_page(_NEWS), "text/html; charset=utf-8"),
        (_page(_NEWS), "text/html"),
        (_page(_NEWS), None),
        (_page(_NEWS).decode().encode("cp1251"), "text/html; charset=windows-1251"),
        (_page(_NEWS).decode().encode("cp1251"), 'text/html; charset="CP1251"'),
        (_page('<meta charset="windows-1251">' + _NEWS).decode().encode("cp1251"), "text/html"),
        (_page(_NEWS).decode().encode("utf-16"), "text/html; charset=utf-8"),
        (_page(_NEWS), "text/html; charset=utf-7"),
        (_page(_NEWS), "text/html; charset=rot13"),
        (_page(_NEWS), "text/html; charset=no-such-codec"),
        (b'<?xml version="1.0" encoding="utf-8"?>' + _page(_NEWS), "application/xhtml+xml; charset=utf-8"),
    ],
    ids=[
        "header-utf-8",
        "no-charset-utf-8",
        "no-header",
        "header-cp1251",
        "quoted-label",
        "meta-cp1251",
        "bom-over-header",
        "wrong-header-utf-7",
        "not-a-text-codec",
        "unknown-codec",
        "xhtml-declaration",
    ],
)
def test_titles_are_read_in_the_pages_charset(body: bytes, content_type: str | None) -> None:
    """HTML's order: a byte order mark, the header's charset, a meta charset; UTF-8
    bytes are UTF-8. lxml alone read a page without a meta charset as latin-1."""
    assert alternates(body, PAGE, content_type) == [
        Alternate("Новини", "https://news.example.org/rss", "application/rss+xml")
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "x": ' + b"[" * 100_000,
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "x": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",
    ],
    ids=["100000-deep", "deep-and-cut-inside-a-feed", "deep-inside-a-feed"],
)
def test_json_nobody_can_read_is_no_feed(body: bytes) -> None:
    """``json`` raises RecursionError on deep nesting; it left ``feeds add`` with a traceback."""
    assert feed_kind(body, "application/feed+json") is None
    assert json_feed_title(body) is None


JSON_VERSIONS = [None, "https://jsonfeed.org/version/1.1", "http://jsonfeed.org/version/1", "1.1", 5]
JSON_TYPES_SERVED = [None, "application/json", "application/feed+json; charset=utf-8", "text/html", RSS]


_NO_ITEMS = object()


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from(JSON_VERSIONS),
    items=st.sampled_from([[], [{"id": "1", "title": "Kharkiv"}], _NO_ITEMS, "none", {"id": "1"}]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "utf-32-be"]),
    content_type=st.sampled_from([*JSON_TYPES_SERVED, "text/plain"]),
    leading=st.sampled_from([b"", b" \r\n\t", b" " * 100, b"\n" * 70_000]),
)
def test_feeds_add_takes_a_json_feed_exactly_when_the_poller_reads_it(
    version: object, items: object, encoding: str, content_type: str | None, leading: bytes
) -> None:
    """``feeds add`` (``feed_kind``, ``json_feed_title``) and the poller (``parse``)
    answer alike for any version, items, encoding, media type and leading whitespace:
    `feeds add` took a version-less document served as application/feed+json that every
    poll then refused, refused 1.0's ``http://`` version and UTF-16 documents that the
    poller reads, took documents without a list of items, and a JSON Feed after 64
    bytes of whitespace, that the poller refused; and it read no title where the poller
    read one."""
    document: dict[str, object] = {"title": "Desk"}
    if items is not _NO_ITEMS:
        document["items"] = items
    if version is not None:
        document["version"] = version
    body = leading + json.dumps(document).encode(encoding)
    fetched = Fetched(
        url=PAGE,
        final_url=PAGE,
        status=200,
        body=body,
        content_type=content_type,
        etag=None,
        last_modified=None,
        fetched_at=datetime(2024, 5, 31, tzinfo=UTC),
    )
    try:
        title = parse(fetched).title
        read = True
    except ParseError:
        title, read = None, False
    assert (feed_kind(body, content_type) == "json") == read
    if read:
        assert json_feed_title(body, content_type) == title
