"""Feed discovery: which feeds a web page advertises, and whether a body is a feed already.

Pure: bytes in, values out. A site's home page names its feeds in its ``<head>``::

    <link rel="alternate" type="application/rss+xml" title="World" href="/world/rss.xml">

``alternates`` returns those links in document order, resolved against the page's
address (or its ``<base href>``), without duplicates. ``feed_kind`` recognises a body
that is itself a feed (RSS, Atom, RDF or JSON Feed) by its first element or its
``version``, so ``monitor feeds add`` takes either a home page or a feed address.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin

import lxml.etree
import lxml.html

from monitor.jsonfeed import decode, is_json_feed, reads_as_json
from monitor.text import one_line
from monitor.weburl import web_parts

FeedKind = Literal["rss", "atom", "rdf", "json"]

FEED_TYPES = frozenset(
    ["application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"]
)
_SNIFF_BYTES = 64 * 1024
TITLE_LIMIT = 1000  # characters of a feed's title, as ``parse`` keeps it: it may become a name in the config
_ROOT_KIND: dict[str, FeedKind] = {"rss": "rss", "feed": "atom", "RDF": "rdf"}
_WRAPPED = re.compile(r"[\t\n\r]")  # a long href wrapped over lines: browsers drop these


@dataclass(frozen=True, slots=True)
class Alternate:
    """A feed a page advertises: its title (if any), absolute URL and media type."""

    title: str | None
    url: str
    type: str


def alternates(html: bytes, base_url: str, content_type: str | None = None) -> list[Alternate]:
    """The feeds a page's ``<head>`` links to, in document order, each URL once.

    ``content_type`` is the page's header, whose charset says how to read the titles;
    a reading that finds no feed (a header naming a wrong charset) gives way to the next."""
    for encoding in _encodings(html, content_type):
        head = _head(html, encoding)
        found = [] if head is None else _linked(head, _base(head, base_url))
        if found:
            return found
    return []


def _linked(head: lxml.html.HtmlElement, base: str) -> list[Alternate]:
    found: list[Alternate] = []
    seen: set[str] = set()
    for link in head.iter("link"):
        rels = str(link.get("rel") or "").lower().split()
        kind = str(link.get("type") or "").split(";")[0].strip().lower()
        if "alternate" not in rels or kind not in FEED_TYPES:
            continue
        url = absolute(str(link.get("href") or ""), base)
        if url is None or url in seen:
            continue
        seen.add(url)
        title = one_line(str(link.get("title") or ""), TITLE_LIMIT) or None
        found.append(Alternate(title=title, url=url, type=kind))
    return found


_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)


def _encodings(html: bytes, content_type: str | None) -> list[str | None]:
    """How lxml may read the page, best first (None: lxml decides from a byte order mark
    or a ``<meta charset>``): the header's charset (after a byte order mark, HTML's
    order), then UTF-8 when the bytes are UTF-8, then lxml's own reading. A header that
    names a wrong charset (utf-7 on a UTF-8 page) gives no document, and the next is
    tried. lxml alone reads a page without a meta charset as latin-1, which turned every
    title of a UTF-8 page that names its charset only in the header ("Новини") into
    mojibake, and that became the feed's name."""
    if html.startswith(_BOMS):
        return [None]
    found: list[str | None] = []
    label = _CHARSET.search(content_type or "")
    if label:
        with contextlib.suppress(LookupError):  # unknown, or no text encoding (rot13)
            "".encode(label.group(1))  # a LookupError for a codec that is no text encoding
            found.append(codecs.lookup(label.group(1)).name)
    try:
        html.decode("utf-8")
        found.append("utf-8")
    except UnicodeDecodeError:
        pass
    return [*dict.fromkeys(found), None]


def _head(html: bytes, encoding: str | None) -> lxml.html.HtmlElement | None:
    """The parsed ``<head>``, or None for a body that is not an HTML document."""
    if not html.strip():
        return None
    try:
        parser = lxml.html.HTMLParser(encoding=encoding)
    except LookupError:  # a codec Python knows and libxml2 does not
        parser = lxml.html.HTMLParser()
    try:
        document = lxml.html.document_fromstring(html, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return None
    head: lxml.html.HtmlElement | None = document.find("head")
    return head


def _base(head: lxml.html.HtmlElement, page_url: str) -> str:
    """``<base href>`` resolved against the page URL, else the page URL."""
    for base in head.iter("base"):
        href = str(base.get("href") or "").strip()
        if href:
            return absolute(href, page_url) or page_url
    return page_url


def absolute(href: str, base: str) -> str | None:
    """``href`` resolved against ``base``; None unless it is an http(s) address.

    ``feed://host/path`` and ``feed:https://...``, which some sites still write, become
    the http(s) addresses they stand for. Tabs and line breaks inside are dropped, as a
    browser drops them. An address no client can ask for is None (``weburl.web_parts``:
    a broken IPv6 literal, a NUL), so one such link in a page never hides its other feeds.
    """
    href = _WRAPPED.sub("", href.strip())
    if href.lower().startswith("feed:"):
        rest = href[len("feed:") :]
        href = rest if rest.lower().startswith(("http:", "https:")) else "http:" + rest
    if not href:
        return None
    try:
        parts = web_parts(urljoin(base, href))
    except ValueError:  # urljoin splits both first
        return None
    return None if parts is None else parts._replace(fragment="").geturl()


def feed_kind(body: bytes, content_type: str | None = None) -> FeedKind | None:
    """What kind of feed ``body`` is, or None when it is not one (an HTML page, say).
    A body the parser reads as JSON (``jsonfeed.reads_as_json``) is a JSON Feed or
    nothing, as it is to the parser."""
    if reads_as_json(body, content_type):
        return "json" if _json_feed(body, content_type) is not None else None
    root = _root_element(body[:_SNIFF_BYTES].removeprefix(b"\xef\xbb\xbf").lstrip())
    return _ROOT_KIND.get(root) if root else None


def _root_element(start: bytes) -> str | None:
    """The local name of the first XML element, read without expanding any entity.

    libxml2 stops at a document that would expand entities too far, but the elements
    it met before that still say what the document is.
    """
    parser = lxml.etree.XMLPullParser(
        events=("start",), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    for offset in range(0, len(start), 4096):
        broken = False
        try:
            parser.feed(start[offset : offset + 4096])
        except lxml.etree.XMLSyntaxError:
            broken = True
        for _event, element in parser.read_events():
            tag = str(element.tag)  # "{namespace}name", or "prefix:name" when undeclared
            return tag.rpartition("}")[2].rpartition(":")[2]
        if broken:
            return None
    return None


def json_feed_title(body: bytes, content_type: str | None = None) -> str | None:
    """The ``title`` of a JSON Feed (served as ``content_type``), if it has one."""
    feed = _json_feed(body, content_type)
    title = feed.get("title") if feed else None
    if not isinstance(title, str):
        return None
    return one_line(title, TITLE_LIMIT) or None


def _json_feed(body: bytes, content_type: str | None) -> dict[str, object] | None:
    """The decoded object when ``body`` is a JSON Feed the parser reads: by its version
    or its media type, with a list of ``items``."""
    try:
        data = decode(body)  # the parser's own reading, so a 100,000-deep array is "not JSON"
    except ValueError:
        return None
    if not (isinstance(data, dict) and is_json_feed(data, content_type)):
        return None
    return data if isinstance(data.get("items"), list) else None
