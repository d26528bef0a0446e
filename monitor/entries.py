"""Helpers both feed parsers (``parse`` for XML, ``jsonfeed`` for JSON Feed) finish
their entries with, so an entry means the same whatever format it came in: http(s)
links only, resolved against the feed's final URL; times in UTC, never after the
fetch; no lone surrogates or control characters in any field; repeats dropped and
different entries that share a guid told apart (ADR 0013). One entry that cannot be
read is dropped with a reason (``collect``); the rest of its feed is kept. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

from monitor.identity import alias_key, entry_key, told_apart
from monitor.items import key_digest
from monitor.models import Entry
from monitor.text import clean, one_line

_WEB_SCHEMES = frozenset(["http", "https"])
# An absolute http(s) URL that urljoin gives back as written and urlsplit accepts:
# ASCII, a host without userinfo or brackets, no query, fragment, parameters, space or
# backslash (most entry links). ``web_link`` returns it without parsing it twice.
_PLAIN_WEB_URL = re.compile(r"https?://[!$&'()*+,\-.0-9:=A-Z_a-z~]+(?:/[!$&'()*+,\-./0-9:=@A-Z_a-z~%]*)?")
MAX_DROPPED = 20  # reasons kept per document; the last one counts the rest
# What one unreadable entry raises (bad URLs, codecs, dates out of range, deep nesting).
# Anything else is a bug and propagates.
ENTRY_DEFECTS = (ValueError, OverflowError, RecursionError)
Item = TypeVar("Item")
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)  # older "publication dates" count as no date


def collect(items: Iterable[Item], build: Callable[[Item], Entry | None]) -> tuple[list[Entry], list[str]]:
    """Build every entry, then ``unique``; an item whose build raises an ENTRY_DEFECTS
    error is dropped with a reason (``entry 3: ValueError: ...``), the others kept."""
    entries, dropped, _ = collect_noted(items, build)
    return entries, dropped


@dataclass(frozen=True, slots=True)
class ItemKeys:
    """What one item of a document became, for item skipping (``monitor.skipping``).

    ``touched``: digests of every key its entry took on the way (its own, the one
    without its guid, the final one); ``record``: the digest of its key when nothing
    else in the document changed that key ("" for an item that makes no entry), None
    when it must be parsed again next time (unreadable, or keyed apart from others).
    """

    touched: frozenset[str] = frozenset()
    record: str | None = ""


def collect_noted(
    items: Iterable[Item], build: Callable[[Item], Entry | None]
) -> tuple[list[Entry], list[str], list[ItemKeys]]:
    """``collect``, and for each item (in order) what it became (``ItemKeys``)."""
    built: list[Entry | None] = []
    failed: set[int] = set()
    dropped: list[str] = []
    for number, item in enumerate(items, 1):
        try:
            built.append(build(item))
        except ENTRY_DEFECTS as e:
            failed.add(number - 1)
            built.append(None)
            dropped.append(f"entry {number}: {one_line(f'{type(e).__name__}: {e}', 200)}")
    entries, finals = settle(built)
    notes = [
        ItemKeys(record=None) if i in failed else _item_keys(entry, finals[i])
        for i, entry in enumerate(built)
    ]
    return entries, dropped, notes


def _item_keys(entry: Entry | None, final: str | None) -> ItemKeys:
    if entry is None or final is None:
        return ItemKeys()
    keys = {entry.key, final}
    if entry.key.startswith("guid:"):
        keys.add(_key_without_guid(entry))
    return ItemKeys(
        frozenset(key_digest(k) for k in keys), key_digest(entry.key) if final == entry.key else None
    )


def bounded_reasons(reasons: Sequence[str]) -> tuple[str, ...]:
    """At most MAX_DROPPED reasons: the first ones, then how many more there were."""
    if len(reasons) <= MAX_DROPPED:
        return tuple(reasons)
    more = len(reasons) - MAX_DROPPED + 1
    return (*reasons[: MAX_DROPPED - 1], f"and {more} more entries")


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
        if _PLAIN_WEB_URL.fullmatch(text):
            return text
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
    else for as long as it stays in the future, so it counts as "now". A date before
    EARLIEST is no real publication date (year 1, year 100: a broken template), and
    near the ends of the calendar any time-zone conversion overflows: both count as
    no date.
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if when < EARLIEST:
        return None
    return min(when, fetched_at)


def unique(entries: Iterable[Entry | None]) -> list[Entry]:
    """Drop exact repeats (same key, title and link); key different entries apart.

    Order-free, so a new story arriving at the top of the document never takes the key
    an older one had (ADR 0013):

    1. a guid that different entries of this document share identifies none of them:
       each is keyed by its link, else by the hash of its text, as if it had no guid;
    2. a key that different entries still share (one link for a live blog's updates)
       is, for every one of them, that key plus ``#`` and a hash of title and link.
    """
    return settle(list(entries))[0]


def settle(built: Sequence[Entry | None]) -> tuple[list[Entry], list[str | None]]:
    """``unique``, and the final key of each input (None for None): an exact repeat
    has the key of the entry it repeats."""
    first: dict[tuple[str, str, str | None], int] = {}
    repeats: dict[int, int] = {}
    kept: list[tuple[int, Entry]] = []
    for i, entry in enumerate(built):
        if entry is None:
            continue
        identity = (entry.key, entry.title, entry.link)
        if identity in first:
            repeats[i] = first[identity]
            continue
        first[identity] = i
        kept.append((i, entry))
    shared_guids = _shared([e for _, e in kept], "guid:")
    rekeyed = [(i, replace(e, key=_key_without_guid(e)) if e.key in shared_guids else e) for i, e in kept]
    clashing = _shared([e for _, e in rekeyed], "")
    seen: set[str] = set()
    finals: dict[int, str] = {}
    result: list[Entry] = []
    for i, entry in rekeyed:
        if entry.key in clashing:
            entry = replace(entry, key=told_apart(entry.key, entry.title, entry.link))
        finals[i] = entry.key
        if entry.key in seen:  # same title and link as an earlier entry: a repeat after all
            continue
        seen.add(entry.key)
        result.append(entry)
    return result, [finals.get(repeats.get(i, i)) for i in range(len(built))]


def _shared(entries: Sequence[Entry], prefix: str) -> set[str]:
    """The keys (starting with ``prefix``) that entries with different titles or links carry."""
    variants: dict[str, set[tuple[str, str | None]]] = {}
    for entry in entries:
        if entry.key.startswith(prefix):
            variants.setdefault(entry.key, set()).add((entry.title, entry.link))
    return {key for key, seen in variants.items() if len(seen) > 1}


def _key_without_guid(entry: Entry) -> str:
    return entry_key(None, entry.link, entry.title, entry.summary_text or entry.content_text)


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
    fetch time and ``dated=False``. The HTML comes sanitised by the format's parser
    (``markup.safe_html``) and is ``clean``ed here. The alias key is computed here, in
    the parse worker, so that the poll threads do not.
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
        summary_html=clean(summary_html),
        summary_text=summary_text,
        content_html=clean(content_html),
        content_text=content_text,
        alias=alias_key(link, title),
    )
