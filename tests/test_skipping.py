"""Item skipping (ADR 0019): a changed body whose items the feed has stored is parsed
without them, and the entries found new are exactly those a parse of the whole body
finds new: edited, reordered and removed items, a feed that starts or stops sending
guids, a new item sharing a guid with a stored one, documents that do not split,
CDATA holding ``</item>``, prefixed Atom, UTF-16 and declared charsets, JSON Feed; and
a property test over generated documents. Each case runs the same documents through
both paths ("skip": with the record of the last poll; "full": without) and compares."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import App
from monitor.errors import ParseError
from monitor.identity import alias_key
from monitor.items import MAX_RECORDED, Record, split_xml
from monitor.models import Entry, Fetched, ParsedFeed
from monitor.parse import parse
from monitor.store import PollResult, Store
from tests.conftest import Clock, RecordingNotifier, SettingsFactory
from tests.test_parse_corpus import IDS as CORPUS_IDS
from tests.test_parse_corpus import Feed as CorpusFeed
from tests.test_parse_corpus import _load as load_corpus_feed

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
RSS = "application/rss+xml; charset=utf-8"


@dataclass(frozen=True)
class Item:
    guid: str | None = None
    link: str | None = None
    title: str = ""
    text: str = ""


def rss(items: Sequence[Item], stamp: str = "1", *, encoding: str = "utf-8", between: str = "") -> bytes:
    """An RSS 2.0 document whose channel changes with ``stamp`` (date and a comment)."""
    parts = []
    for item in items:
        fields = [f"<title>{html.escape(item.title)}</title>"] if item.title else []
        fields += [f"<link>{html.escape(item.link)}</link>"] if item.link else []
        fields += [f'<guid isPermaLink="false">{html.escape(item.guid)}</guid>'] if item.guid else []
        if item.text:
            fields.append(f"<description><![CDATA[{item.text}]]></description>")
        parts.append("<item>" + "".join(fields) + "</item>")
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel><title>Feed</title>'
        f"<link>https://example.org/</link><lastBuildDate>{stamp}</lastBuildDate>"
        f"<!-- generated at {stamp} -->" + between.join(parts) + "</channel></rss>"
    ).encode(encoding)


def atom(items: Sequence[Item], stamp: str = "1", *, prefix: str = "") -> bytes:
    p = f"{prefix}:" if prefix else ""
    ns = f'xmlns{":" + prefix if prefix else ""}="http://www.w3.org/2005/Atom"'
    parts = []
    for item in items:
        fields = [f"<{p}title>{html.escape(item.title)}</{p}title>"]
        fields += [f"<{p}id>{html.escape(item.guid)}</{p}id>"] if item.guid else []
        fields += [f'<{p}link href="{html.escape(item.link)}"/>'] if item.link else []
        fields += [f"<{p}summary>{html.escape(item.text)}</{p}summary>"] if item.text else []
        parts.append(f"<{p}entry>" + "".join(fields) + f"</{p}entry>")
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<{p}feed {ns}><{p}title>Feed</{p}title>'
        f"<{p}updated>2024-05-31T17:{int(stamp) % 60:02d}:00Z</{p}updated>" + "".join(parts) + f"</{p}feed>"
    ).encode()


def json_feed(items: Sequence[Item], stamp: str = "1") -> bytes:
    objects = []
    for item in items:
        obj: dict[str, object] = {"title": item.title, "content_text": item.text}
        obj.update({"id": item.guid} if item.guid else {})
        obj.update({"url": item.link} if item.link else {})
        objects.append(obj)
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Feed",
        "generated": stamp,
        "items": objects,
    }
    return json.dumps(doc).encode()


def fetched(body: bytes, content_type: str = RSS, known: str | None = None) -> Fetched:
    url = "https://example.org/feed"
    return Fetched(url, url, 200, body, content_type, None, None, NOW, known=known)


@dataclass
class Feed:
    """A feed polled again and again, with the pipeline's "which entries are new" step
    (by key, else by alias, as ``Store.seen``); ``skip``: pass the last record."""

    skip: bool
    keys: set[str] = field(default_factory=set)
    aliases: set[str] = field(default_factory=set)
    record: str | None = None
    skipped: list[int] = field(default_factory=list)

    def poll(self, body: bytes, content_type: str = RSS) -> list[Entry] | str:
        try:
            parsed = parse(fetched(body, content_type, self.record if self.skip else None))
        except ParseError as e:
            return f"error: {e}"
        new = [e for e in parsed.entries if e.key not in self.keys and _alias(e) not in self.aliases]
        self.keys.update(e.key for e in new)
        self.aliases.update(a for a in map(_alias, new) if a)
        self.record = parsed.items
        self.skipped.append(parsed.skipped)
        return new


def _alias(entry: Entry) -> str:
    return alias_key(entry.link, entry.title) or ""


def both(documents: Sequence[bytes], content_type: str = RSS) -> tuple[Feed, Feed]:
    """Poll the documents in turn with and without skipping; the new entries agree."""
    skip, full = Feed(skip=True), Feed(skip=False)
    for n, body in enumerate(documents):
        assert skip.poll(body, content_type) == full.poll(body, content_type), f"document {n}"
    return skip, full


A = Item("a", "https://example.org/a", "Alpha", "first story")
B = Item("b", "https://example.org/b", "Bravo", "second story")
C = Item("c", "https://example.org/c", "Charlie", "third story")
D = Item("d", "https://example.org/d", "Delta", "fourth story")


def test_a_changed_body_parses_only_its_new_items() -> None:
    skip, _ = both([rss([A, B, C], "1"), rss([A, B, C], "2"), rss([D, A, B, C], "3")])
    assert skip.skipped == [0, 3, 3]
    first = parse(fetched(rss([A, B, C], "1")))
    again = parse(fetched(rss([D, A, B, C], "3"), known=first.items))
    assert [e.title for e in again.entries] == ["Delta"] and again.title == "Feed"
    assert len(Record.decode(again.items)) == 4


def test_an_edited_item_is_treated_exactly_as_before() -> None:
    edited = replace(B, title="Bravo (updated)", text="second story, corrected")
    skip, full = both([rss([A, B, C], "1"), rss([A, edited, C], "2"), rss([A, edited, C], "3")])
    assert skip.skipped == [0, 2, 3] and full.keys == {"guid:a", "guid:b", "guid:c"}
    # Without guid or link an entry is its text: an edit is a new entry on both paths.
    bare = Item(title="Bare", text="v1")
    skip, _ = both([rss([A, bare], "1"), rss([A, replace(bare, text="v2")], "2")])
    assert len(skip.keys) == 3


def test_reordered_and_removed_items_are_nothing_new() -> None:
    skip, _ = both([rss([A, B, C, D], "1"), rss([D, C, B, A], "2"), rss([C, A], "3"), rss([A, B, C, D], "4")])
    assert skip.skipped == [0, 4, 2, 2]  # B and D left the record when they left the feed


def test_a_feed_that_starts_or_stops_sending_guids() -> None:
    plain = [replace(i, guid=None) for i in (A, B, C)]
    both([rss(plain, "1"), rss([A, B, C], "2"), rss([A, B, C, D], "3"), rss([*plain, D], "4")])


def test_a_new_item_sharing_a_guid_with_a_stored_one_parses_the_whole_document() -> None:
    """Two different entries with one guid are keyed apart, the stored one too: the
    shorter document would not say so, so the whole one is parsed."""
    twin = Item("a", "https://example.org/a-2", "Alpha two", "another story")
    skip, _ = both([rss([A, B], "1"), rss([twin, A, B], "2"), rss([twin, A, B], "3")])
    assert skip.skipped[1] == 0


def test_documents_that_do_not_split_are_parsed_whole() -> None:
    stray = rss([A, B], "2").replace(b"<title>Alpha", b"<title>Alpha < Omega")  # not XML: feedparser copes
    commented = rss([A, B, C], "3", between="<!-- ad -->")
    cut = rss([A, B, C], "4")[:-40]
    for body in (stray, commented, cut):
        assert split_xml(body, RSS, "https://example.org/feed") is None
    skip, _ = both([rss([A, B], "1"), stray, commented, cut, rss([A, B, C], "5")])
    assert skip.skipped[1:4] == [0, 0, 0]
    # A document feedparser complains about (a bare "&") is parsed whole and not recorded.
    bozo = rss([A, B], "6").replace(b"<title>Bravo", b"<title>Bravo & co")
    skip, _ = both([rss([A, B], "5"), bozo, rss([A, B], "7"), rss([A, B], "8")])
    assert skip.skipped == [0, 0, 0, 2]


def test_cdata_holding_an_item_end_tag_stays_inside_its_item() -> None:
    tricky = replace(B, text="a <b>bold</b> </item><item><title>fake</title></item> claim")
    skip, full = both([rss([A, tricky], "1"), rss([C, A, tricky], "2")])
    assert skip.skipped == [0, 2] and "Bravo" in {e.title for e in parse(fetched(rss([tricky]))).entries}
    assert len(full.keys) == 3


def test_atom_with_and_without_a_prefix() -> None:
    for prefix in ("", "atom"):
        skip, _ = both(
            [
                atom([A, B], "1", prefix=prefix),
                atom([A, B], "2", prefix=prefix),
                atom([C, A, B], "3", prefix=prefix),
            ]
        )
        assert skip.skipped == [0, 2, 2], prefix


def test_encodings_declared_charsets_and_utf16() -> None:
    accented = Item("e", "https://example.org/e", "Élysée café", "déjà vu")
    latin = [rss([accented, A], str(n), encoding="iso-8859-1") for n in (1, 2)]
    skip, full = both([*latin, rss([B, accented, A], "3", encoding="iso-8859-1")], "application/rss+xml")
    assert skip.skipped == [0, 2, 2] and "guid:e" in full.keys
    wide = [rss([A, accented], str(n), encoding="utf-16") for n in (1, 2)]
    skip, full = both(wide, "application/rss+xml")
    assert skip.skipped == [0, 0] and full.keys == {"guid:a", "guid:e"}  # not cut: parsed whole


def test_json_feed_items() -> None:
    skip, _ = both(
        [json_feed([A, B], "1"), json_feed([A, B], "2"), json_feed([C, A, B], "3")], "application/feed+json"
    )
    assert skip.skipped == [0, 2, 2]


def test_a_json_feed_item_with_an_overflowing_number_is_keyed_alike_on_both_paths() -> None:
    """``1e999`` loads as infinity, which JSON writes back as no value: the shorter
    document keyed that item by its link, a whole parse by its id, so it came back as
    new (and alerted) at the next whole parse. Such a document is parsed whole."""
    doc = b'{"version": "https://jsonfeed.org/version/1.1", "items": [%s{"id": 1e999, "url": "https://example.org/x"}]}'
    first, second = doc % b"", doc % b'{"id": "a", "url": "https://example.org/a"}, '
    skip, _ = both([first, second, second + b" "], "application/feed+json")
    assert skip.skipped == [0, 0, 0]


def test_a_document_whose_items_carry_xml_base_is_parsed_whole() -> None:
    """feedparser keeps an item's ``xml:base`` for the items after it, so an item's
    relative link depends on the items before it: in the shorter document it was keyed
    against the feed's address, in the whole one against its neighbour's base, and came
    back as new at the next whole parse. Such a document is not split."""
    based = (
        b'<item xml:base="https://cdn.example.net/other/"><title>First</title><link>p.html</link>'
        b'<guid isPermaLink="false">p</guid></item>'
    )
    plain = b"<item><title>Second story</title><link>/articles/q.html</link></item>"

    def doc(*items: bytes) -> bytes:
        return (
            b'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
            + b"".join(items)
            + b"</channel></rss>"
        )

    assert split_xml(doc(based, plain), RSS, "https://example.org/feed") is None
    assert split_xml(doc(plain), RSS, "https://example.org/feed") is not None
    skip, _ = both([doc(based), doc(based, plain), doc(based, plain) + b" "])
    assert skip.skipped == [0, 0, 0]


def test_the_record_is_bounded() -> None:
    many = [Item(f"g{n}", f"https://example.org/{n}", f"T{n}", "x") for n in range(MAX_RECORDED + 50)]
    parsed = parse(fetched(rss(many)))
    assert len(Record.decode(parsed.items)) == MAX_RECORDED
    skip, _ = both([rss(many, "1"), rss(many, "2")])
    assert skip.skipped == [0, MAX_RECORDED]


# -- generated documents ------------------------------------------------------

_items = st.builds(
    Item,
    guid=st.sampled_from([None, "g1", "g2", "g3"]),
    link=st.sampled_from([None, "https://example.org/1", "https://example.org/2", "/relative"]),
    title=st.sampled_from(["", "One", "Two", "one"]),
    text=st.sampled_from(["", "text", "more text", "x </item> y", "<p>para</p>"]),
)
_formats = st.sampled_from(["rss", "atom", "atom:atom", "json"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pool=st.lists(_items, min_size=1, max_size=6),
    picks=st.lists(st.lists(st.integers(0, 5), max_size=7), min_size=2, max_size=4),
    form=_formats,
)
def test_skipping_finds_what_a_whole_parse_finds(pool: list[Item], picks: list[list[int]], form: str) -> None:
    documents = []
    for n, pick in enumerate(picks):
        items = [pool[i % len(pool)] for i in pick]
        if form == "rss":
            documents.append(rss(items, str(n)))
        elif form.startswith("atom"):
            documents.append(atom(items, str(n), prefix=form.partition(":")[2]))
        else:
            documents.append(json_feed(items, str(n)))
    both(documents, "application/feed+json" if form == "json" else RSS)


# -- through the poller: loopback server, SQLite, pruning ------------------------


def test_a_server_without_validators_whose_body_always_changes(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    stories = [Item(f"s{n}", f"https://example.org/{n}", f"Story {n}", "quiet day") for n in range(20)]
    current = list(stories)
    served: list[int] = []

    def respond(request: Request) -> Response:
        served.append(len(served) + 1)  # every body has a new timestamp, and no validators
        return Response(rss(current, str(served[-1])), content_type=RSS)

    httpserver.expect_request("/f").respond_with_handler(respond)
    settings = settings_factory(
        feeds=[{"name": "F", "url": httpserver.url_for("/f")}],
        rules=[{"name": "ATACMS", "any": ["ATACMS"], "notify": ["hook"]}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        first = app.run_once().outcomes[0]
        clock.advance(timedelta(hours=1))
        second = app.run_once().outcomes[0]
        current.insert(0, Item("new", "https://example.org/new", "ATACMS delivered", "x"))
        clock.advance(timedelta(hours=1))
        third = app.run_once().outcomes[0]
    assert (first.new, first.skipped) == (20, 0)
    assert (second.status, second.new, second.skipped) == ("ok", 0, 20)
    assert (third.new, third.matched, third.skipped) == (1, 1, 20)
    assert [a.title for a in notifier.sent] == ["ATACMS delivered"]


def test_pruning_keeps_what_the_feed_still_lists_and_its_record(any_db_url: str) -> None:
    """Past retention, an article the feed no longer lists goes; one it still lists stays
    (deleted, it would be new again at the next changed body), and so does the record
    (it used to be reset, and the next prune then knew nothing of what the feed lists)."""
    store = Store.open(any_db_url)
    try:
        store.sync_feeds([("F", "https://example.org/feed")], NOW)
        feed = store.feeds()[0]
        first: ParsedFeed = parse(fetched(rss([A, B])))
        result = PollResult(None, None, "Feed", "hash", None, first.items)
        store.save_poll(feed.id, result, first.entries, {}, {}, NOW, NOW + timedelta(hours=1))
        later: ParsedFeed = parse(fetched(rss([C, B]), known=first.items))
        result = PollResult(None, None, "Feed", "hash2", None, later.items)
        store.save_poll(feed.id, result, later.entries, {}, {}, NOW, NOW + timedelta(hours=1))
        pruned = store.prune(NOW + timedelta(days=30), timedelta(days=7), None)
        record = store.feeds()[0].items
        every = parse(fetched(rss([A, B, C]))).entries
        stored = store.seen(feed.id, every)
    finally:
        store.close()
    assert pruned.articles == 1, "A, which the feed dropped"
    assert record == later.items
    assert stored == {e.key for e in every if e.title != "Alpha"}, "B and C are still stored"


# -- real feeds ---------------------------------------------------------------


def _variants(feed: CorpusFeed) -> list[bytes]:
    """The feed without its first item, then whole, then without one in the middle."""
    split = split_xml(feed.body, feed.content_type, feed.fetched().final_url)
    if split is None or len(split.items) < 2:
        return [feed.body, feed.body]
    count = len(split.items)
    return [
        split.document(range(1, count)),
        feed.body,
        split.document(i for i in range(count) if i != count // 2),
    ]


@pytest.mark.parametrize("feed_id", CORPUS_IDS)
def test_real_feeds_give_the_same_new_entries_on_both_paths(feed_id: str) -> None:
    feed = load_corpus_feed(feed_id)
    both(_variants(feed), feed.content_type)


def test_relative_links_are_resolved_without_feedparsers_uri_resolver() -> None:
    """feedparser's resolver of URIs inside HTML is off (ADR 0019): the entry's link
    still resolves (``xml:base``, then the final URL) and the text is the same; only
    the stored HTML keeps its relative ``href``."""
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        b'xml:base="https://base.example/news/"><title>Feed</title><entry><id>e1</id><title>One</title>'
        b'<link href="story-1.html"/><summary type="html">&lt;p&gt;Read &lt;a href="more.html"&gt;more'
        b"&lt;/a&gt;&lt;/p&gt;</summary></entry></feed>"
    )
    [entry] = parse(fetched(body, "application/atom+xml")).entries
    assert entry.link == "https://base.example/news/story-1.html"
    assert entry.summary_text == "Read more" and 'href="more.html"' in entry.summary_html


def test_a_hostile_doctype_is_scanned_in_linear_time() -> None:
    """A doctype pattern with two ways to match "] [" backtracks exponentially on an
    unclosed doctype (3^n); this one has one way, so 5,000 groups return at once."""
    body = b'<?xml version="1.0"?><!DOCTYPE rss ' + b"[ ] " * 5000 + b"<rss><channel><item/></channel></rss>"
    assert split_xml(body, RSS, "https://example.org/feed") is None
    declared = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY nbsp "&#160;">]>' + rss([A, B])[39:]
    split = split_xml(declared, RSS, "https://example.org/feed")
    assert split is not None and len(split.items) == 2
