"""Helpers both feed parsers (``parse`` for XML, ``jsonfeed`` for JSON Feed) finish
their entries with, so an entry means the same whatever format it came in: http(s)
links only, resolved against the feed's final URL; times in UTC, never after the
fetch; repeats dropped and different entries that share a guid told apart. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from monitor.identity import digest, entry_key
from monitor.models import Entry
from monitor.text import one_line

_WEB_SCHEMES = frozenset(["http", "https"])


def text_or_none(value: object, limit: int = 2000) -> str | None:
    """A short one-line string, or None for missing/blank values."""
    if value is None:
        return None
    text = one_line(str(value), limit)
    return text or None


def web_link(candidates: Iterable[object], base: str) -> str | None:
    """The first candidate that is an http(s) URL once resolved against ``base``."""
    for candidate in candidates:
        text = text_or_none(candidate)
        if text is None:
            continue
        try:
            url = urljoin(base, text)
            scheme = urlsplit(url).scheme.lower()
        except ValueError:  # a broken IPv6 literal, for one
            continue
        if scheme in _WEB_SCHEMES:
            return url
    return None


def utc_clamped(when: datetime, fetched_at: datetime) -> datetime | None:
    """``when`` in UTC (naive means UTC), never later than the fetch; None if out of range.

    A date in the future (a wrong clock, a scheduled post) would sort above everything
    else for as long as it stays in the future, so it counts as "now".
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return min(when, fetched_at)


def unique(entries: Iterable[Entry | None]) -> list[Entry]:
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


def make_entry(
    *,
    guid: str | None,
    link: str | None,
    title: str,
    author: str | None,
    published: datetime | None,
    fetched_at: datetime,
    summary: tuple[str, str],
    content: tuple[str, str],
) -> Entry | None:
    """An Entry with its identity and time rules applied; None for an empty ghost.

    ``summary`` and ``content`` are (HTML, plain text); an undated entry gets the
    fetch time and ``dated=False``.
    """
    summary_html, summary_text = summary
    content_html, content_text = content
    if not (title or link or summary_text or content_text):
        return None
    return Entry(
        key=entry_key(guid, link, title, summary_text or content_text),
        title=title,
        link=link,
        author=author,
        published=published or fetched_at,
        dated=published is not None,
        summary_html=summary_html,
        summary_text=summary_text,
        content_html=content_html,
        content_text=content_text,
    )
