"""Feed bytes -> ParsedFeed with feedparser. No I/O: feedparser never sees a URL or a path.

feedparser treats a ``str`` argument as a URL to fetch and a ``bytes`` argument as a
file name to open before it treats it as a document, so the body is handed over as a
stream: a server that answers ``/etc/passwd`` gets that text parsed, not the file.

Bozo policy: feedparser's "bozo" flag marks anything from a wrong charset label to
truncated XML. A feed with usable entries is accepted with a warning; a body that
yields no feed at all (an HTML page, an empty body, broken XML with no entries)
raises ParseError so the failure is recorded on the feed. A body cut off inside an
entry (a server that closed the connection early) keeps its complete entries and
drops the cut one: stored under its key with half its text, it would count as seen
when the whole story arrives and never be matched.

URLs: feedparser is not told where the body came from, so a guid that merely looks
relative ("7637800") stays as written and the key does not change when the feed
moves or redirects. Links are resolved against the final URL here, and only http(s)
links are kept (no ``javascript:``, no ``tag:`` ids standing in for links).

Text: fields feedparser marks as plain text are taken literally ("5 < 7", "the
<script> tag"); HTML fields go through html_to_text.

Hostile bytes: a byte order mark wins over a charset label that contradicts it (a
UTF-16BE body served as ``charset=utf-16`` or ``charset=utf-8``); a character
reference no string can hold (``&#xD800;``, ``&#99999999999;``), which crashes
feedparser's fallback parser, becomes U+FFFD first; an exception from inside
feedparser is a ParseError; an entry that cannot be read is dropped with a reason
(``ParsedFeed.dropped``) and the rest are kept. Nothing but ParseError leaves
``parse``.
"""

from __future__ import annotations

import calendar
import codecs
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
from feedparser.encodings import RE_XML_PI_ENCODING, convert_to_utf8

from monitor.entries import bounded_reasons, collect_noted, make_entry, text_or_none, utc_clamped, web_link
from monitor.errors import ParseError
from monitor.items import split_xml
from monitor.jsonfeed import parse_json_feed, reads_as_json
from monitor.markup import safe_html
from monitor.models import Entry, Fetched, ParsedFeed
from monitor.skipping import Noted, skim
from monitor.text import ascii_int, html_to_text, one_line, plain_text

_PLAIN_TYPES = frozenset(["text/plain", "text"])
_ENTRY_OPEN = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s/>]")
_ENTRY_CLOSE = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>")
_CHARACTER_ENTITY = re.compile(
    rb"""<!ENTITY\s+[^\s%"'<>]+\s+(["'])&#(?:[0-9]{1,7}|x[0-9a-fA-F]{1,6});\1\s*>"""
)
_ENTITY_NAME = re.compile(rb"""<!ENTITY\s+(%\s+)?([^\s"'<>]{1,60})""", re.IGNORECASE)
_CHARREF = re.compile(rb"&#([xX][0-9a-fA-F]+|[0-9]+);")
# feedparser's e-mail regex for <author> and <dc:creator> text (its issue 562) takes time
# quadratic in a run of these characters: 54 s for 100,000 "x" spliced into one, 4 s for
# "a@a.a.a...". Runs are cut to MAX_RUN before it reads them (about 10 ms a run at
# worst); the longest in the 180 real feeds of the corpus is 580 (ADR 0023).
MAX_RUN = 1000
_RUN_CLASS = rb"[A-Za-z0-9_.+\-]"
_LONG_RUN = re.compile(_RUN_CLASS + rb"{%d,}" % (MAX_RUN + 1))
# Whether a document has such a run at all, asked of every body: each byte mapped to
# "a" (in the class) or " " (not) in C, then one substring search. The regex's search
# takes about 0.8 ms on a 60 KB feed, this about 0.05 ms.
_RUN_MAP = bytes(ord("a") if re.fullmatch(_RUN_CLASS, bytes([b])) else ord(" ") for b in range(256))
_RUN_PROBE = b"a" * (MAX_RUN + 1)
# Longest first: a UTF-32LE mark starts with the UTF-16LE one (feedparser's own order).
_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32be"),
    (codecs.BOM_UTF32_LE, "utf-32le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16be"),
    (codecs.BOM_UTF16_LE, "utf-16le"),
)
# feedparser's options (ADR 0019, 0022): its sanitizer and its URI resolver each parse
# every HTML field again. Neither is needed: links are resolved in ``_link``, and stored
# HTML goes through ``markup.safe_html`` (nh3) at a seventh of the sanitizer's cost.
# Set once per process; ``python -m bench parse_options`` measures them.
FEEDPARSER_OPTIONS: dict[str, bool] = {"sanitize_html": False, "resolve_relative_uris": False}
# What feedparser stores under the names read here (``summary``, ``links``, ``href`` ...)
# are the names themselves: FeedParserDict's own lookup (aliases such as ``guid`` for
# ``id``, a fallback from ``updated`` to ``published`` with a warning, and a try/except
# per call) is for the names it renamed, none of which is read here, so the plain dict
# lookup gives the same values at a fraction of the cost (about 35 lookups an entry).
_get = dict.get
MAX_TTL_MINUTES = 7 * 24 * 60  # a week: the longest wait any hint may ask for (as fetch's MAX_WAIT)


def parse(fetched: Fetched) -> ParsedFeed:
    """Parse a fetched body into entries with identity, UTC times and plain text; with
    ``fetched.known``, only the items not stored yet (``skipping``, ADR 0019)."""
    if reads_as_json(fetched.body, fetched.content_type):
        return parse_json_feed(fetched)
    split = split_xml(fetched.body, fetched.content_type, fetched.final_url)
    return skim(fetched, split, parse_noted)


def parse_noted(fetched: Fetched) -> Noted:
    """The whole body parsed, and what each of its items became (``entries.ItemKeys``)."""
    result = _feedparser(fetched)
    problem = result.get("bozo_exception")
    version = str(result.get("version") or "")
    raw_entries = list(result.entries)
    cut = problem is not None and _ends_inside_entry(fetched.body, len(raw_entries))
    dropped = [f"entry {len(raw_entries)}: the body ends inside it"] if cut else []
    if cut:
        raw_entries.pop()
    feed = result.feed
    inherited = _author(feed) if version.startswith("atom") else None
    entries, unreadable, notes = collect_noted(raw_entries, lambda raw: _entry(raw, fetched, inherited))
    serious = problem is not None and not isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe)
    if not entries and (not version or serious or unreadable):
        raise ParseError(fetched.url, f"parse: {_not_a_feed(fetched.body, version, problem, unreadable)}")
    parsed = ParsedFeed(
        title=_feed_text(lambda: one_line(_text(feed, "title"), 1000)),
        link=_feed_text(lambda: _link(feed, fetched.final_url)),
        entries=tuple(entries),
        warning=_warning(problem, cut),
        ttl=_ttl(feed),
        dropped=bounded_reasons(unreadable + dropped),
    )
    return parsed, notes, problem is None or _misplaced_declaration(problem)


def _misplaced_declaration(problem: object) -> bool:
    """feedparser's complaint about blank lines before ``<?xml``, common in real feeds:
    the whole document and the shorter one share those bytes (``items.split_xml``), so
    both are parsed the same (by feedparser's lenient parser)."""
    return "XML or text declaration not at start of entity" in str(problem)


def _feedparser(fetched: Fetched) -> Any:
    """feedparser's result for the body, prepared (see the module docstring); ParseError
    when feedparser itself fails (its bug, on input nobody tested it with). Preparing
    runs feedparser's own charset detection, so it is inside the same guard."""
    try:
        body, headers = _prepared(fetched)
        return feedparser.parse(io.BytesIO(body), response_headers=headers, **FEEDPARSER_OPTIONS)
    except (ValueError, LookupError, TypeError, AttributeError, OverflowError, RecursionError) as e:
        raise ParseError(fetched.url, f"parse: feedparser failed: {_exception_text(e)}") from e


def _prepared(fetched: Fetched) -> tuple[bytes, dict[str, str]]:
    """The body and headers to give feedparser: BOM over charset, entities refused,
    long runs of word characters cut, impossible character references replaced."""
    body = _without_undecodable_label(fetched.body)
    headers = {"content-type": _content_type(body, fetched.content_type)}
    document = convert_to_utf8(headers, body, {})
    _refuse_entity_declarations(fetched, document)
    if has_long_run(document):
        return _repaired(_LONG_RUN.sub(_cut_run, document)), _utf8(headers)
    if b"&#" not in document:
        return body, headers
    repaired = _repaired(document)
    if repaired == document:
        return fetched.body, headers
    return repaired, _utf8(headers)


def has_long_run(document: bytes) -> bool:
    """Whether ``_LONG_RUN`` finds a run in ``document`` (the same answer, faster)."""
    return _RUN_PROBE in document.translate(_RUN_MAP)


def _repaired(document: bytes) -> bytes:
    """A UTF-8 document with the character references no string can hold replaced."""
    return _CHARREF.sub(_repair_charref, document) if b"&#" in document else document


def _utf8(headers: dict[str, str]) -> dict[str, str]:
    """The headers for the document as ``convert_to_utf8`` made it."""
    media_type = headers["content-type"].partition(";")[0].strip()
    return {"content-type": f"{media_type}; charset=utf-8"}


def _cut_run(found: re.Match[bytes]) -> bytes:
    """A run of MAX_RUN word characters or more, cut to MAX_RUN (``_LONG_RUN``)."""
    return found.group()[:MAX_RUN]


def _without_undecodable_label(body: bytes) -> bytes:
    """The body without an XML declaration's ``encoding="..."`` value when that value is
    not UTF-8 (feedparser decodes the label as UTF-8 and raises) or holds a NUL, which
    no codec's name does (decoding with it raises ValueError); the other clues remain."""
    found = RE_XML_PI_ENCODING.match(body)
    if found is None:
        return body
    try:
        unusable = "\0" in found.group(1).decode("utf-8")
    except UnicodeDecodeError:
        unusable = True
    return body[: found.start(1)] + body[found.end(1) :] if unusable else body


def _content_type(body: bytes, content_type: str | None) -> str:
    """The Content-Type to parse with: a byte order mark replaces whatever charset it names."""
    value = content_type or "application/xml"
    for bom, encoding in _BOMS:
        if body.startswith(bom) and (len(bom) != 2 or body[2:4] != b"\0\0"):
            media_type = value.partition(";")[0].strip() or "application/xml"
            return f"{media_type}; charset={encoding}"
    return value


def _repair_charref(found: re.Match[bytes]) -> bytes:
    """``&#...;`` kept when it names a character, else U+FFFD (surrogates, past U+10FFFF)."""
    ref = found.group(1)
    digits, base = (ref[1:], 16) if ref[:1] in b"xX" else (ref, 10)
    if len(digits.lstrip(b"0")) > 8:
        return b"&#xFFFD;"
    code = int(digits, base)
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return b"&#xFFFD;"
    return found.group(0)


def _feed_text(read: Callable[[], str | None]) -> str | None:
    """A feed-level field, or None when it cannot be read (the entries still count)."""
    try:
        value = read()
    except (ValueError, OverflowError, RecursionError):
        return None
    return value or None


def _ttl(feed: Any) -> float | None:
    """RSS ``<ttl>`` (minutes, ASCII digits) in seconds, at most a week; None when absent or nonsense."""
    minutes = ascii_int(str(feed.get("ttl", "")))
    if not minutes:
        return None
    return float(min(minutes, MAX_TTL_MINUTES) * 60)


def _refuse_entity_declarations(fetched: Fetched, document: bytes) -> None:
    """ParseError for any ``<!ENTITY>`` declaration but a single character reference.

    ``document`` is the body as feedparser's parsers will see it (re-encoded to UTF-8,
    so a UTF-16 body cannot hide a declaration). feedparser keeps "safe" text
    entities and its fallback parser expands them without limit: a 160 KB body with
    one 100 KB entity used 20,000 times became a 2 GB title (6 GB, a minute). Nested
    ("billion laughs"), external (SYSTEM/PUBLIC) and parameter entities are refused
    too, even though expat and feedparser happen to leave them alone today.
    ``<!ENTITY nbsp "&#160;">``, which some feeds declare, expands to one character
    and is allowed.
    """
    for start in _declarations(document):
        if _CHARACTER_ENTITY.match(document, start):
            continue
        raise ParseError(
            fetched.url,
            f"parse: refused XML entity declaration {_entity_name(document, start)!r} "
            "(entities that expand to more than one character, or load files or URLs, are not allowed)",
        )


def _entity_name(document: bytes, start: int) -> str:
    """The declared name, ``%name`` for a parameter entity."""
    found = _ENTITY_NAME.match(document, start)
    if found is None:
        return "?"
    return ("%" if found.group(1) else "") + found.group(2).decode("utf-8", "replace")


def _declarations(document: bytes) -> Iterator[int]:
    """Offsets of ``<!ENTITY`` outside comments and CDATA sections, in one linear pass."""
    pos = document.find(b"<!")
    while pos != -1:
        if document.startswith(b"<!--", pos):
            end, skip = document.find(b"-->", pos + 4), 3
        elif document.startswith(b"<![CDATA[", pos):
            end, skip = document.find(b"]]>", pos + 9), 3
        else:
            if document[pos + 2 : pos + 8].upper() == b"ENTITY":
                yield pos
            end, skip = pos, 2
        if end == -1:
            return
        pos = document.find(b"<!", end + skip)


def _ends_inside_entry(body: bytes, parsed: int) -> bool:
    """True when the body stops inside an entry that feedparser returned (the last one).

    The last entry-start tag comes after the last entry-end tag, and feedparser made
    as many entries as there are start tags (a body cut inside ``<item `` yields none
    for it, and then the last entry it did return is whole).
    """
    opens = [m.start() for m in _ENTRY_OPEN.finditer(body)]
    if not opens or len(opens) != parsed:
        return False
    closes = [m.start() for m in _ENTRY_CLOSE.finditer(body)]
    return not closes or closes[-1] < opens[-1]


def _not_a_feed(body: bytes, version: str, problem: object, unreadable: list[str]) -> str:
    """Explain a body that gave no entries."""
    head = body[:512].lstrip().lower()
    if not head:
        return "empty body"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "not a feed (got an HTML page)"
    if unreadable:
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        return f"no entry could be read: {unreadable[0]}{more}"
    if problem is not None:
        prefix = f"broken {version} feed" if version else "not a feed"
        return f"{prefix}: {_exception_text(problem)}"
    return "not a feed (no RSS or Atom root element)"


def _warning(problem: object, cut: bool) -> str | None:
    if problem is None:
        return None
    text = _exception_text(problem)
    if cut:
        return f"parse: body ends inside an entry, which was dropped ({text})"
    return f"parse: {text}"


def _exception_text(problem: object) -> str:
    text = one_line(str(problem), 200)
    return text or type(problem).__name__


def _entry(raw: Any, fetched: Fetched, inherited_author: str | None) -> Entry | None:
    """One feedparser entry -> Entry; None for ghosts with nothing in them."""
    summary = str(_get(raw, "summary", ""))
    content, content_type = _content(_get(raw, "content") or ())
    if content == summary:
        content = ""
    summary_type = _detail_type(raw, "summary", content_type)
    summary_html, summary_text = _kept(summary, summary_type)
    content_html, content_text = _kept(content, content_type)
    link = _link(raw, fetched.final_url)
    title = one_line(_text(raw, "title"), 1000)
    return make_entry(
        guid=text_or_none(_get(raw, "id")),
        link=link,
        title=title,
        author=_author(raw) or inherited_author,
        published=_published(raw, fetched.fetched_at),
        fetched_at=fetched.fetched_at,
        summary=(summary_html, summary_text),
        content=(content_html, content_text),
    )


def _content(parts: Iterable[Any]) -> tuple[str, str]:
    """The richest of an entry's content blocks (Atom may carry several), and its type."""
    values = [(str(_get(p, "value", "")), str(_get(p, "type", ""))) for p in parts if _get(p, "value")]
    return max(values, key=lambda v: len(v[0]), default=("", ""))


def _detail_type(raw: Any, name: str, default: str = "") -> str:
    """The MIME type feedparser gives a text construct (``title_detail`` ...)."""
    detail = _get(raw, f"{name}_detail") or {}
    return str(_get(detail, "type") or default)


def _kept(value: str, mime_type: str) -> tuple[str, str]:
    """(the HTML to store, the plain text) of a field. Unless feedparser sanitised it
    already, (X)HTML is stored as ``markup.safe_html`` makes it; the text is read from
    the field as it came either way (ADR 0022). Plain text is stored as it came."""
    html_value = value
    if mime_type not in _PLAIN_TYPES and not FEEDPARSER_OPTIONS["sanitize_html"]:
        html_value = safe_html(value)
    return html_value, _as_text(value, mime_type)


def _as_text(value: str, mime_type: str) -> str:
    """Plain text of a field: literal for text/plain, rendered for (X)HTML."""
    if mime_type in _PLAIN_TYPES:
        return plain_text(value)
    return html_to_text(value)


def _text(raw: Any, name: str) -> str:
    return _as_text(str(_get(raw, name, "")), _detail_type(raw, name))


def _author(raw: Any) -> str | None:
    """The author's name; "jane@example.org (Jane Doe)" becomes "Jane Doe"."""
    detail = _get(raw, "author_detail") or {}
    return text_or_none(_get(detail, "name")) or text_or_none(_get(raw, "author"))


def _link(raw: Any, base: str) -> str | None:
    """The first http(s) alternate link, resolved against the feed's final URL."""
    candidates = [
        _get(link, "href")
        for link in _get(raw, "links") or ()
        if _get(link, "rel", "alternate") == "alternate" and _get(link, "href")
    ]
    candidates.append(_get(raw, "link"))
    return web_link(candidates, base)


def _published(raw: Any, fetched_at: datetime) -> datetime | None:
    """Published (or updated) time in UTC, clamped to the fetch time; None when absent."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # The plain lookup (``_get``): FeedParserDict's own maps a missing updated_parsed
        # to published_parsed with a DeprecationWarning (feedparser issue 310).
        parsed = _get(raw, key)
        if isinstance(parsed, time.struct_time):
            try:
                when = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, OSError):
                continue
            clamped = utc_clamped(when, fetched_at)
            if clamped is not None:
                return clamped
    return None
