"""Feed bytes -> ParsedFeed with feedparser. No I/O: feedparser never sees a URL.

Bozo policy: feedparser's "bozo" flag marks anything from a wrong charset label to
truncated XML. A feed with usable entries is accepted with a warning; a body that
yields no feed at all (an HTML page, an empty body, broken XML with no entries)
raises ParseError so the failure is recorded on the feed.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import feedparser

from monitor.errors import ParseError
from monitor.identity import digest, entry_key
from monitor.models import Entry, Fetched, ParsedFeed
from monitor.text import html_to_text, one_line


def parse(fetched: Fetched) -> ParsedFeed:
    """Parse a fetched body into entries with identity, UTC times and plain text."""
    result = feedparser.parse(
        fetched.body,
        response_headers={
            "content-location": fetched.final_url,
            "content-type": fetched.content_type or "application/xml",
        },
    )
    problem = result.get("bozo_exception")
    entries = _unique(_entry(raw, fetched.fetched_at) for raw in result.entries)
    if not entries and (not result.get("version") or problem is not None):
        reason = _not_a_feed(fetched.body, problem)
        raise ParseError(fetched.url, f"parse: {reason}")
    feed = result.feed
    return ParsedFeed(
        title=one_line(html_to_text(feed.get("title", ""))) or None,
        link=feed.get("link"),
        entries=tuple(entries),
        warning=f"parse: {_exception_text(problem)}" if problem is not None else None,
    )


def _not_a_feed(body: bytes, problem: object) -> str:
    """Explain a body that gave no entries."""
    head = body[:512].lstrip().lower()
    if not head:
        return "empty body"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "not a feed (got an HTML page)"
    if problem is not None:
        return f"not a feed: {_exception_text(problem)}"
    return "not a feed (no RSS or Atom root element)"


def _exception_text(problem: object) -> str:
    text = one_line(str(problem), 200)
    return text or type(problem).__name__


def _entry(raw: Any, fetched_at: datetime) -> Entry | None:
    """One feedparser entry -> Entry; None for ghosts with nothing in them."""
    title_html = str(raw.get("title", ""))
    summary_html = str(raw.get("summary", ""))
    content_html = _content(raw.get("content") or ())
    if content_html == summary_html:
        content_html = ""
    link = _text_or_none(raw.get("link"))
    guid = _text_or_none(raw.get("id"))
    title = one_line(html_to_text(title_html), 1000)
    summary_text = html_to_text(summary_html)
    content_text = html_to_text(content_html)
    if not (title or link or summary_text or content_text):
        return None
    published = _published(raw, fetched_at)
    return Entry(
        key=entry_key(guid, link, title, summary_text or content_text),
        title=title,
        link=link,
        author=_text_or_none(raw.get("author")),
        published=published or fetched_at,
        dated=published is not None,
        summary_html=summary_html,
        summary_text=summary_text,
        content_html=content_html,
        content_text=content_text,
    )


def _content(parts: Iterable[Any]) -> str:
    """The richest of an entry's content blocks (Atom may carry several)."""
    values = [str(p.get("value", "")) for p in parts if p.get("value")]
    return max(values, key=len, default="")


def _text_or_none(value: object) -> str | None:
    if value is None:
        return None
    text = one_line(str(value), 2000)
    return text or None


def _published(raw: Any, fetched_at: datetime) -> datetime | None:
    """Published (or updated) time in UTC, clamped to the fetch time; None when absent."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = raw.get(key)
        if isinstance(parsed, time.struct_time):
            try:
                when = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, OSError):
                continue
            return min(when, fetched_at)
    return None


def _unique(entries: Iterable[Entry | None]) -> list[Entry]:
    """Drop exact repeats; give different entries that share a guid distinct keys."""
    seen: dict[str, Entry] = {}
    result: list[Entry] = []
    for entry in entries:
        if entry is None:
            continue
        first = seen.get(entry.key)
        if first is None:
            seen[entry.key] = entry
            result.append(entry)
            continue
        if (first.title, first.link) == (entry.title, entry.link):
            continue
        key = f"{entry.key}#{digest(entry.title, entry.link or '')[:12]}"
        if key not in seen:
            clone = replace(entry, key=key)
            seen[key] = clone
            result.append(clone)
    return result
