"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1) -> ParsedFeed. Pure, no I/O.

feedparser does not read JSON Feed, so this module does, with the same entry
semantics as ``parse`` (see ``entries``):

- identity: the item's ``id`` (coerced to a string, as the spec asks), else its
  ``url``, else a hash of title and text (``identity.entry_key``);
- ``title`` and ``summary`` are plain text and taken literally; ``content_html`` is
  rendered to text, ``content_text`` taken as it is; when both are given the HTML
  wins. As with RSS and Atom, an item with content but no summary gets its content
  as the summary (and no separate content), so "teaser only?" means the same for
  every format;
- ``date_published`` (else ``date_modified``) in UTC, clamped to the fetch time;
  an item without a usable date takes the fetch time and ``dated=False``;
- authors: 1.1 ``authors`` (the first name), 1.0 ``author``; items without their own
  inherit the feed's;
- an item with no title, link or text at all is dropped, and so is anything that is
  not a JSON object where an item should be. Wrong types are ignored field by field;
  an item that still cannot be read is dropped with a reason (``ParsedFeed.dropped``);
- numbers: an integer of more than 100 digits is kept as its digits (``int()`` of 4,300
  digits raises; an id stays an id) and ``NaN``/``Infinity`` are absent, so no number
  breaks the document.

A body that is not JSON raises ParseError("parse: invalid JSON Feed: ..."); JSON
that is not a JSON Feed (no jsonfeed.org ``version``, no ``items`` list) raises too.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from monitor.entries import bounded_reasons, collect_noted, make_entry, text_or_none, utc_clamped, web_link
from monitor.errors import ParseError
from monitor.items import split_json
from monitor.markup import safe_html
from monitor.models import Entry, Fetched, ParsedFeed
from monitor.skipping import Noted, skim
from monitor.text import html_to_text, one_line, plain_text

JSON_TYPES = frozenset(["application/feed+json", "application/json"])
_VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
_LEADING = b" \t\r\n\xef\xbb\xbf"  # whitespace and a UTF-8 byte order mark
_SNIFF_BYTES = 64 * 1024


def parse_json_feed(fetched: Fetched) -> ParsedFeed:
    """Parse a JSON Feed body; ParseError when it is not one. With ``fetched.known``,
    only the items not stored yet (``skipping``, ADR 0019)."""
    try:
        split = split_json(_json(fetched.body), fetched.final_url)
    except (ValueError, RecursionError):  # not strict UTF-8 JSON: parse_noted says what is wrong
        split = None
    return skim(fetched, split, parse_noted)


def reads_as_json(body: bytes, content_type: str | None) -> bool:
    """Whether ``body`` is read as JSON (a JSON Feed) rather than as XML: it opens with
    ``{`` (after whitespace and a UTF-8 byte order mark, within 64 KiB), or it does not
    open with ``<`` and is served as JSON (UTF-16 or UTF-32 JSON). The parser and
    ``feeds add`` route a body by this one rule."""
    head = body[:_SNIFF_BYTES].lstrip(_LEADING)
    if head.startswith(b"{"):
        return True
    if head.startswith(b"<"):
        return False
    return (content_type or "").partition(";")[0].strip().lower() in JSON_TYPES


def is_json_feed(document: object, content_type: str | None) -> bool:
    """Whether a decoded JSON document is a JSON Feed: an object whose ``version`` names
    jsonfeed.org (1.0 feeds often write ``http://``), or one served as
    ``application/feed+json`` that lists ``items`` (the media type says what the version
    would). ``feeds add`` asks the same question (``discover``), and routes a body by
    ``reads_as_json`` as the parser does, so it never adds a feed the poller then
    refuses, nor refuses one the poller reads."""
    if not isinstance(document, dict):
        return False
    version = document.get("version")
    if isinstance(version, str) and version.startswith(_VERSION_PREFIXES):
        return True
    media_type = (content_type or "").partition(";")[0].strip().lower()
    return media_type == "application/feed+json" and isinstance(document.get("items"), list)


def parse_noted(fetched: Fetched) -> Noted:
    """The whole JSON Feed parsed, and what each of its items became."""
    document, warning = _load(fetched)
    if not isinstance(document, dict):
        raise ParseError(fetched.url, "parse: invalid JSON Feed: the top level is not an object")
    if not is_json_feed(document, fetched.content_type):
        raise ParseError(fetched.url, "parse: not a JSON Feed (no jsonfeed.org version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(fetched.url, "parse: invalid JSON Feed: items is not a list")
    inherited = _author(document)
    objects = [item for item in items if isinstance(item, dict)]
    entries, dropped, notes = collect_noted(objects, lambda item: _entry(item, fetched, inherited))
    if not entries and dropped:
        raise ParseError(fetched.url, f"parse: no entry could be read: {dropped[0]}")
    parsed = ParsedFeed(
        title=one_line(plain_text(_string(document, "title")), 1000) or None,
        link=web_link([_string(document, "home_page_url")], fetched.final_url),
        entries=tuple(entries),
        warning=warning,
        dropped=bounded_reasons(dropped),
    )
    return parsed, notes, warning is None


def _load(fetched: Fetched) -> tuple[object, str | None]:
    """The decoded JSON, and a warning when bad UTF-8 had to be replaced."""
    try:
        return _json(fetched.body), None
    except UnicodeDecodeError:
        text, warning = fetched.body.decode("utf-8", "replace"), "parse: JSON Feed is not valid UTF-8"
    except (ValueError, RecursionError) as e:
        raise ParseError(fetched.url, f"parse: invalid JSON Feed: {_reason(e)}") from e
    try:
        return _json(text), warning
    except (ValueError, RecursionError) as e:
        raise ParseError(fetched.url, f"parse: invalid JSON Feed: {_reason(e)}") from e


def decode(body: bytes) -> object:
    """The JSON document in ``body``, as the parser reads it (bounded numbers); ValueError
    when it is not JSON, not UTF-8 (or UTF-16/32 with its byte order mark), or nested
    deeper than the decoder's recursion allows (``json`` raises RecursionError there)."""
    try:
        return _json(body)
    except RecursionError as e:
        raise ValueError(_reason(e)) from e


def _json(document: str | bytes) -> object:
    """``json.loads`` with bounded numbers (see the module docstring)."""
    return json.loads(document, parse_int=_integer, parse_constant=lambda name: None)


def _integer(digits: str) -> int | str:
    return int(digits) if len(digits) <= 100 else digits


def _reason(e: Exception) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return one_line(str(e), 200)


def _entry(item: Mapping[str, Any], fetched: Fetched, inherited_author: str | None) -> Entry | None:
    """One item -> Entry; None for an item with nothing in it."""
    title = one_line(plain_text(_string(item, "title")), 1000)
    link = web_link([_string(item, "url"), _string(item, "external_url")], fetched.final_url)
    content_html, content_text = _content(item)
    summary_text = plain_text(_string(item, "summary"))
    summary_html = html.escape(summary_text)
    if not summary_text:
        summary_html, summary_text = content_html, content_text
    if content_text == summary_text:
        content_html, content_text = "", ""
    published = _date(item.get("date_published"), fetched.fetched_at) or _date(
        item.get("date_modified"), fetched.fetched_at
    )
    return make_entry(
        guid=_id(item.get("id")),
        link=link,
        title=title,
        author=_author(item) or inherited_author,
        published=published,
        fetched_at=fetched.fetched_at,
        summary=(summary_html, summary_text),
        content=(content_html, content_text),
    )


def _content(item: Mapping[str, Any]) -> tuple[str, str]:
    """(HTML, text) of an item's content: ``content_html`` rendered, else ``content_text``."""
    markup = _string(item, "content_html")
    text = html_to_text(markup)
    if text:
        return safe_html(markup), text
    text = plain_text(_string(item, "content_text"))
    return (html.escape(text), text) if text else ("", "")


def _string(mapping: Mapping[str, Any], name: str) -> str:
    """A field that must be a string; anything else counts as absent."""
    value = mapping.get(name)
    return value if isinstance(value, str) else ""


def _id(value: object) -> str | None:
    """The item id; the spec says a number (a 1.0 habit) is coerced to a string."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return text_or_none(value)


def _author(mapping: Mapping[str, Any]) -> str | None:
    """The first author's name: 1.1 ``authors``, else 1.0 ``author``."""
    authors = mapping.get("authors")
    candidates: Iterable[object] = authors if isinstance(authors, list) else []
    for candidate in [*candidates, mapping.get("author")]:
        if isinstance(candidate, dict):
            name = text_or_none(plain_text(_string(candidate, "name")), 200)
            if name:
                return name
    return None


def _date(value: object, fetched_at: datetime) -> datetime | None:
    """An RFC 3339 date (or, leniently, an RFC 822 one) in UTC, clamped to the fetch time."""
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        return None
    text = value.strip()
    try:
        when = datetime.fromisoformat(text.upper())
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return utc_clamped(when, fetched_at)
