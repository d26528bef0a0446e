"""parse over the real feeds of ../shared/corpora/feeds: as feedparser reads them, and
mutated by a hostile publisher.

- Regression: every feed parses as feedparser does (same entries in the same order,
  less the documented drops: empty entries, exact repeats, and an entry the body ends
  inside), served with the manifest's Content-Type. JSON Feeds, which feedparser does
  not read, parse or raise ParseError.
- Property (hypothesis): byte flips, truncation and splices of hostile snippets
  (character references no string can hold, entity declarations, huge attributes,
  dates at the ends of the calendar, byte order marks, control bytes, deep nesting)
  into real feeds, served under swapped charset labels, give a ParsedFeed whose every
  entry is clean, or a ParseError: never another exception, and within ``TIME_BOUND``
  (a correctness bound for a loaded test machine, not a benchmark). A few go through
  the ParsePool, as the daemon parses.
"""

from __future__ import annotations

import gzip
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.entries import MAX_DROPPED
from monitor.errors import ParseError
from monitor.models import Fetched, ParsedFeed
from monitor.parse import parse
from monitor.parse_pool import ParsePool
from monitor.text import html_to_text, one_line, plain_text
from tests.corpora import CORPORA, corpus
from tests.test_parse_hostile import assert_clean

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
TIME_BOUND = 20.0  # seconds for one parse of a mutated feed of at most MUTATED_MAX bytes
MUTATED_MAX = 64 * 1024  # only feeds this small are mutated, to keep the examples quick
MUTATION_EXAMPLES = 300
POOL_EXAMPLES = 12


@dataclass(frozen=True)
class Feed:
    id: str
    format: str
    content_type: str
    body: bytes

    def fetched(self, body: bytes | None = None, content_type: str | None = None) -> Fetched:
        url = f"https://feeds.example.org/{self.id}"
        return Fetched(
            url=url,
            final_url=url,
            status=200,
            body=self.body if body is None else body,
            content_type=content_type or self.content_type,
            etag=None,
            last_modified=None,
            fetched_at=NOW,
        )


def _manifest() -> list[dict[str, Any]]:
    path = CORPORA / "feeds" / "manifest.json"
    return list(json.loads(path.read_text())["feeds"]) if path.exists() else []


@cache
def _load(feed_id: str) -> Feed:
    folder = corpus("feeds")
    [entry] = [f for f in _manifest() if f["id"] == feed_id]
    body = gzip.decompress((folder / "feeds" / f"{feed_id}.gz").read_bytes())
    if body[:2] == b"\x1f\x8b":  # stored gzip-encoded by its source: the fetcher would decode it
        body = gzip.decompress(body)
    return Feed(feed_id, entry["format"], entry["content_type"], body)


IDS = [f["id"] for f in _manifest()] or ["(corpus not found)"]
SMALL = [f["id"] for f in _manifest() if f["bytes"] <= MUTATED_MAX] or ["(corpus not found)"]


# --- regression: as feedparser reads them ------------------------------------------


def _reference(feed: Feed, dropped: tuple[str, ...]) -> list[Any]:
    """feedparser's entries, less what parse documents it drops."""
    result = feedparser.parse(io.BytesIO(feed.body), response_headers={"content-type": feed.content_type})
    skipped = {int(reason.split(":")[0].split()[1]) for reason in dropped}
    seen, kept = set(), []
    for number, raw in enumerate(result.entries, 1):
        if number in skipped or not any(raw.get(k) for k in ("title", "link", "summary", "content")):
            continue
        has_identity = raw.get("id") or raw.get("link")
        repeat = (
            raw.get("id"),
            raw.get("title"),
            raw.get("link"),
            None if has_identity else raw.get("summary"),
        )
        if repeat not in seen:
            seen.add(repeat)
            kept.append(raw)
    return kept


def _title(raw: Any) -> str:
    value, kind = str(raw.get("title", "")), (raw.get("title_detail") or {}).get("type", "")
    return one_line(plain_text(value) if kind in ("text/plain", "text") else html_to_text(value), 1000)


@pytest.mark.parametrize("feed_id", IDS)
def test_every_corpus_feed_parses_as_feedparser_does(feed_id: str) -> None:
    feed = _load(feed_id)
    try:
        parsed = parse(feed.fetched())
    except ParseError:
        if feed.format != "json":  # feedparser reads nothing there either
            assert _reference(feed, ()) == [], feed_id
        return
    for entry in parsed.entries:
        assert_clean(entry)
    if feed.format == "json":
        return
    expected = _reference(feed, parsed.dropped)
    assert [e.title for e in parsed.entries] == [_title(raw) for raw in expected]
    for entry, raw in zip(parsed.entries, expected, strict=True):
        link = urljoin(feed.fetched().final_url, str(raw.get("link") or ""))
        if raw.get("link") and link.startswith(("http://", "https://")):
            assert entry.link == link, (feed_id, entry.title)
    assert len({e.key for e in parsed.entries}) == len(parsed.entries)


# --- property: mutations of real feeds ---------------------------------------------

SNIPPETS = [
    b"&#xD800;",
    b"&#55296;",
    b"&#99999999999999999999;",
    b"&#x110000;",
    b"&amp;#xDFFF;",
    b"&#0;",
    b'<!DOCTYPE rss [<!ENTITY lol "lol">]>',
    b'<!ENTITY nbsp "&#xD800;">',
    b"&lol;",
    b'<a href="' + b"x" * 100_000 + b'">',
    b"<title>" + b"Kharkiv " * 30_000 + b"</title>",
    b"<pubDate>Mon, 01 Jan 0001 00:00:00 +2359</pubDate>",
    b"<pubDate>Fri, 31 Dec 9999 23:59:59 -2359</pubDate>",
    b"<updated>0001-01-01T00:00:00+14:00</updated>",
    b"<published>9999-12-31T23:59:59-12:00</published>",
    b"<ttl>\xc2\xb2</ttl>",
    b"<ttl>99999999999999999999</ttl>",
    b"<link>http://a..b/x</link>",
    b"<link>http://[::1</link>",
    b"<guid>same</guid>",
    b"\xef\xbb\xbf",
    b"\xfe\xff",
    b"\xff\xfe",
    b"\x00\x00\xfe\xff",
    b"\x00",
    b"\x01\x1b\x7f",
    b"\xed\xa0\x80",
    b"\xff\xfe\xfd",
    b"<![CDATA[",
    b"]]>",
    b"<item>",
    b"</item>",
    b"<entry>",
    b"<div>" * 3000,
    b'"id": 1' + b"0" * 5000 + b",",
    b'"date_published": "0001-01-01T00:00:00+01:00",',
    b'"title": "\\ud800",',
    b"{" * 2000,
]
CONTENT_TYPES = [
    None,
    "application/rss+xml; charset=utf-16",
    "application/rss+xml; charset=utf-8",
    "application/atom+xml; charset=latin-1",
    "text/xml; charset=utf-32",
    "text/xml; charset=koi8-r",
    "application/xml; charset=no-such-charset",
    "application/xml; charset=" + "x" * 1000,
    "application/feed+json",
    "text/html; charset=utf-8",
    "",
]


@dataclass(frozen=True)
class Mutation:
    kind: str  # flip | truncate | splice
    at: float  # where, as a fraction of the body
    value: int = 0  # flip: the new byte; splice: which snippet


mutations = st.lists(
    st.one_of(
        st.builds(Mutation, st.just("flip"), st.floats(0, 1), st.integers(0, 255)),
        st.builds(Mutation, st.just("truncate"), st.floats(0, 1)),
        st.builds(Mutation, st.just("splice"), st.floats(0, 1), st.integers(0, len(SNIPPETS) - 1)),
    ),
    min_size=1,
    max_size=6,
)


def mutate(body: bytes, changes: list[Mutation]) -> bytes:
    data = bytearray(body)
    for change in changes:
        at = min(int(change.at * len(data)), max(len(data) - 1, 0))
        if change.kind == "flip" and data:
            data[at] = change.value
        elif change.kind == "truncate":
            del data[at:]
        elif change.kind == "splice":
            data[at:at] = SNIPPETS[change.value]
    return bytes(data)


def check(result: ParsedFeed) -> None:
    for entry in result.entries:
        assert_clean(entry)
    assert len({e.key for e in result.entries}) == len(result.entries)
    assert len(result.dropped) <= MAX_DROPPED
    assert result.ttl is None or 0 < result.ttl <= 7 * 24 * 3600


def parse_within_bound(fetched: Fetched) -> ParsedFeed | None:
    """parse's result (None for a ParseError), in less than TIME_BOUND."""
    started = time.monotonic()
    try:
        return parse(fetched)
    except ParseError:
        return None
    finally:
        assert time.monotonic() - started < TIME_BOUND


@settings(max_examples=MUTATION_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feed_id=st.sampled_from(SMALL), changes=mutations, content_type=st.sampled_from(CONTENT_TYPES))
@example(  # a NUL spliced into the charset label: feedparser's detection raised ValueError
    feed_id="RSParser--4fsodonline.atom",
    changes=[
        Mutation("truncate", 0.5),
        Mutation("truncate", 0.625),
        Mutation("truncate", 0.0078125),
        Mutation("splice", 0.25, 24),
    ],
    content_type="text/xml; charset=utf-32",
)
def test_a_mutated_real_feed_parses_or_raises_parse_error(
    feed_id: str, changes: list[Mutation], content_type: str | None
) -> None:
    feed = _load(feed_id)
    result = parse_within_bound(feed.fetched(mutate(feed.body, changes), content_type))
    if result is not None:
        check(result)


@pytest.fixture(scope="module")
def pool() -> Iterator[ParsePool]:
    with ParsePool(timeout=TIME_BOUND, size=2) as parse_pool:
        yield parse_pool


@settings(
    max_examples=POOL_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(feed_id=st.sampled_from(SMALL), changes=mutations, content_type=st.sampled_from(CONTENT_TYPES))
def test_a_mutated_real_feed_parses_the_same_through_the_pool(
    pool: ParsePool, feed_id: str, changes: list[Mutation], content_type: str | None
) -> None:
    fetched = _load(feed_id).fetched(mutate(_load(feed_id).body, changes), content_type)
    try:
        expected: ParsedFeed | str = parse(fetched)
    except ParseError as e:
        expected = str(e)
    try:
        actual: ParsedFeed | str = pool.parse(fetched)
    except ParseError as e:
        actual = str(e)
    assert actual == expected


def test_the_corpus_is_where_the_manifest_says() -> None:
    folder = corpus("feeds")
    assert {p.name for p in (folder / "feeds").iterdir()} == {f"{i}.gz" for i in IDS}
    assert isinstance(folder, Path)
