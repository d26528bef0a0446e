"""OPML subscription lists: read 1.0/2.0 (nested categories flattened), write 2.0. Pure.

OPML files come from other programs and the web, so they are read as hostile XML:
no DTD loaded, no network, no external entity resolved, and a document that declares
entities of its own is refused outright (libxml2 would still expand internal entities
inside attribute values, within its amplification limit). A feed is an ``<outline>``
with an ``xmlUrl``; outlines without one are categories, and their feeds are listed
with the category path (``News/World``).

A feed's own poll interval travels in a ``monitor:interval`` attribute, which other
readers ignore, so ``export`` then ``import`` gives back the same names, URLs and
intervals (names with their whitespace runs collapsed, as they are read from any file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

import lxml.etree

from monitor.errors import OpmlError
from monitor.text import one_line

NAMESPACE = "https://github.com/monitor-news/monitor/opml"
"""The namespace of the ``monitor:interval`` attribute."""
_INTERVAL = f"{{{NAMESPACE}}}interval"
NAME_LIMIT = 1000  # characters of a feed's name, as ``parse`` keeps a feed's title
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed of a subscription list."""

    name: str
    url: str
    html_url: str | None = None
    interval: str | None = None
    category: str | None = None


def parse_opml(data: bytes, source: str = "OPML") -> list[OpmlFeed]:
    """The feeds of an OPML document in document order, each URL once.

    Raises OpmlError (naming ``source``) for anything that is not readable OPML.
    """
    parser = lxml.etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = lxml.etree.fromstring(data, parser)
    except lxml.etree.XMLSyntaxError as e:
        raise OpmlError(f"{source}: not valid XML: {e}") from e
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise OpmlError(f"{source}: declares XML entities; refusing to read it")
    if not isinstance(root.tag, str) or _local(root.tag) != "opml":
        raise OpmlError(f"{source}: not an OPML file (the root element is not <opml>)")
    body = next((child for child in root if _local(child.tag) == "body"), None)
    if body is None:
        raise OpmlError(f"{source}: not an OPML file (no <body>)")
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for feed in _outlines(body, ()):
        if feed.url not in seen:
            seen.add(feed.url)
            feeds.append(feed)
    return feeds


def _outlines(parent: lxml.etree._Element, path: tuple[str, ...]) -> Iterator[OpmlFeed]:
    """Feeds under ``parent``, depth first; ``path`` names the enclosing categories."""
    for outline in parent:
        if not isinstance(outline.tag, str) or _local(outline.tag) != "outline":
            continue
        attrs = {_local(k).lower(): _clean(v) for k, v in outline.attrib.items() if not k.startswith("{")}
        label = one_line(attrs.get("text") or attrs.get("title") or "", NAME_LIMIT)
        url = attrs.get("xmlurl")
        if url:
            yield OpmlFeed(
                name=label or url,
                url=url,
                html_url=attrs.get("htmlurl") or None,
                interval=_clean(outline.get(_INTERVAL, "")) or None,
                category="/".join(path) or None,
            )
        yield from _outlines(outline, (*path, label) if label and not url else path)


def _local(tag: object) -> str:
    return str(tag).rpartition("}")[2]


def _clean(value: str) -> str:
    """Each run of whitespace as one space, ends trimmed: OPML names are often wrapped."""
    return " ".join(str(value).split())


def _xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry (control characters)."""
    return _NOT_XML.sub("", value)


def render_opml(
    feeds: Sequence[OpmlFeed], *, title: str = "monitor feeds", created: datetime | None = None
) -> bytes:
    """An OPML 2.0 document listing ``feeds`` (UTF-8, with an XML declaration)."""
    root = lxml.etree.Element("opml", nsmap={"monitor": NAMESPACE})
    root.set("version", "2.0")
    head = lxml.etree.SubElement(root, "head")
    lxml.etree.SubElement(head, "title").text = _xml_text(title)
    if created is not None:
        lxml.etree.SubElement(head, "dateCreated").text = format_datetime(created)
    body = lxml.etree.SubElement(root, "body")
    for feed in feeds:
        outline = lxml.etree.SubElement(body, "outline")
        outline.set("type", "rss")
        outline.set("text", _xml_text(feed.name))
        outline.set("title", _xml_text(feed.name))
        outline.set("xmlUrl", _xml_text(feed.url))
        if feed.html_url:
            outline.set("htmlUrl", _xml_text(feed.html_url))
        if feed.interval:
            outline.set(_INTERVAL, _xml_text(feed.interval))
    data: bytes = lxml.etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    return data
