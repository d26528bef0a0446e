"""The Store on a real SQLite file and on the machine's PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from monitor.errors import StorageError
from monitor.identity import alias_key
from monitor.models import Entry, Match, Snippet
from monitor.store import PollResult, Store
from monitor.store.engine import WriterGate

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)
RESULT = PollResult(etag='"e"', last_modified="lm", title="Feed")


def _entry(key: str, title: str = "t") -> Entry:
    return Entry(key, title, f"https://x.example/{key}", None, NOW, "<p>s</p>", "s", "", "")


def _match(rule: str) -> Match:
    return Match(rule, "summary", (rule,), Snippet("s", ((0, 1),)))


@pytest.fixture
def store(any_db_url: str) -> Iterator[Store]:
    store = Store.open(any_db_url)
    yield store
    store.close()


def _feed_id(store: Store, url: str = "https://x.example/feed") -> int:
    store.sync_feeds([("X", url)], NOW)
    return next(f.id for f in store.feeds() if f.url == url)


def test_sync_feeds_inserts_renames_deactivates_and_revives(store: Store) -> None:
    store.sync_feeds([("A", "https://a/"), ("B", "https://b/")], NOW)
    assert [(f.name, f.first_poll) for f in store.feeds()] == [("A", True), ("B", True)]
    store.sync_feeds([("A renamed", "https://a/")], NOW)
    assert [f.name for f in store.feeds()] == ["A renamed"]
    statuses = {s.url: s.active for s in store.feed_statuses()}
    assert statuses == {"https://a/": True, "https://b/": False}
    store.sync_feeds([("A renamed", "https://a/"), ("B", "https://b/")], NOW)
    assert len(store.feeds()) == 2


def test_save_poll_stores_only_new_entries_in_one_go(store: Store) -> None:
    feed = _feed_id(store)
    entries = [_entry("k1"), _entry("k2")]
    routes = {"r1": ["mail", "slack"], "r2": ["mail"]}
    saved = store.save_poll(feed, RESULT, entries, {"k1": [_match("r1"), _match("r2")]}, routes, NOW, LATER)
    assert (saved.new, saved.matched, saved.queued) == (2, 1, 2)
    assert store.known_keys(feed, ["k1", "k2", "k3"]) == {"k1", "k2"}

    again = store.save_poll(
        feed, RESULT, [*entries, _entry("k3")], {"k1": [_match("r1")]}, routes, NOW, LATER
    )
    assert (again.new, again.matched, again.queued) == (1, 0, 0)

    alerts = store.claim_due(NOW, timedelta(minutes=2)).alerts
    assert sorted((a.channel, a.rules) for a in alerts) == [("mail", ("r1", "r2")), ("slack", ("r1",))]
    assert all(a.published == NOW and a.published.tzinfo is not None for a in alerts)
    [status] = store.feed_statuses()
    assert (status.articles, status.alerts, status.last_success_at) == (3, 2, NOW)
    assert store.feeds()[0].etag == '"e"'


def test_an_entry_is_seen_by_its_alias_whether_the_parser_computed_it_or_not(store: Store) -> None:
    """Parsed entries carry their alias key (computed in the parse worker); an entry
    made anywhere else has none and the store computes the same one."""
    feed = _feed_id(store)
    made_here = _entry("guid-1", "Prisoner exchange agreed")
    assert made_here.alias is None
    store.save_poll(feed, RESULT, [made_here], {}, {}, NOW, LATER)
    rotated = replace(
        made_here, key="guid-2", alias=alias_key(made_here.link, made_here.title)
    )  # a new guid for the same link and title, as the parser would make it
    assert rotated.alias is not None
    assert store.seen(feed, [rotated]) == {"guid-2"}
    store.save_poll(
        feed, RESULT, [replace(made_here, key="guid-3", link="https://x.example/other")], {}, {}, NOW, LATER
    )
    assert store.seen(feed, [replace(rotated, key="guid-4", alias=None)]) == {"guid-4"}


def test_concurrent_saves_of_the_same_entries_never_duplicate(store: Store) -> None:
    feed = _feed_id(store)
    entries = [_entry(f"k{i}") for i in range(50)]
    matches = {e.key: [_match("r")] for e in entries}

    def save(_: int) -> int:
        return store.save_poll(feed, RESULT, entries, matches, {"r": ["c"]}, NOW, LATER).queued

    with ThreadPoolExecutor(4) as pool:
        queued = list(pool.map(save, range(4)))
    assert sum(queued) == 50
    assert len(store.claim_due(NOW, timedelta(minutes=1), limit=1000).alerts) == 50


def test_due_feeds_and_failure_bookkeeping(store: Store) -> None:
    feed = _feed_id(store)
    assert [f.id for f in store.feeds(due_at=NOW)] == [feed]
    assert store.record_failure(feed, "fetch: HTTP 500", NOW, LATER) == 1
    assert store.record_failure(feed, "fetch: HTTP 502", NOW, LATER) == 2
    assert store.feeds(due_at=NOW) == []
    [state] = store.feeds(due_at=LATER)
    assert state.error_count == 2 and state.first_poll
    [status] = store.feed_statuses()
    assert (status.last_error, status.error_count, status.last_success_at) == ("fetch: HTTP 502", 2, None)
    store.record_unchanged(feed, LATER, LATER + timedelta(minutes=10))
    [status] = store.feed_statuses()
    assert (status.last_error, status.error_count, status.last_success_at) == (None, 0, LATER)


def test_claims_lease_and_settle(store: Store) -> None:
    feed = _feed_id(store)
    store.save_poll(feed, RESULT, [_entry("k")], {"k": [_match("r")]}, {"r": ["a", "b"]}, NOW, LATER)
    first = store.claim_due(NOW, timedelta(minutes=2))
    assert len(first.alerts) == 2
    assert store.claim_due(NOW + timedelta(minutes=1), timedelta(minutes=2)).alerts == ()
    a, b = first.alerts
    assert store.mark_sent(first.token, [a.delivery_id], NOW) == {a.delivery_id}
    assert store.mark_failed(first.token, b.delivery_id, "notify: down", NOW + timedelta(minutes=5))
    assert store.claim_due(NOW + timedelta(minutes=3), timedelta(minutes=2)).alerts == ()
    again = store.claim_due(NOW + timedelta(minutes=6), timedelta(minutes=2))
    [retry] = again.alerts
    assert (retry.delivery_id, retry.attempts) == (b.delivery_id, 1)
    assert store.mark_failed(again.token, b.delivery_id, "notify: still down", None)
    statuses = {c.channel: c for c in store.channel_statuses()}
    assert (statuses["a"].sent, statuses["b"].dead, statuses["b"].last_error) == (1, 1, "notify: still down")


def test_an_expired_lease_makes_the_delivery_due_again(store: Store) -> None:
    feed = _feed_id(store)
    store.save_poll(feed, RESULT, [_entry("k")], {"k": [_match("r")]}, {"r": ["a"]}, NOW, LATER)
    [claimed] = store.claim_due(NOW, timedelta(minutes=2)).alerts
    [again] = store.claim_due(NOW + timedelta(minutes=3), timedelta(minutes=2)).alerts
    assert again.delivery_id == claimed.delivery_id
    assert store.release_claims() == 1
    assert len(store.claim_due(NOW + timedelta(minutes=3), timedelta(minutes=2)).alerts) == 1


def test_sqlite_writers_of_one_process_take_turns_instead_of_timing_out(db_url: str) -> None:
    """With SQLite's busy timeout cut to 1 ms, 16 poll threads saving at once would fail
    with "database is locked" if they raced in SQLite's busy handler; they queue instead."""
    store = Store.open(db_url)
    try:

        @event.listens_for(store.engine, "connect")
        def _impatient(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA busy_timeout=1")

        store.engine.dispose()  # new connections: the store's pragmas, then this one
        store.sync_feeds([(f"F{i}", f"https://x.example/{i}") for i in range(16)], NOW)
        feeds = [f.id for f in store.feeds()]

        def save(feed: int) -> int:
            saved = 0
            for batch in range(10):
                entries = [_entry(f"f{feed}-{batch}-{i}") for i in range(20)]
                saved += store.save_poll(feed, RESULT, entries, {}, {}, NOW, LATER).new
            return saved

        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(save, feeds)) == [200] * 16
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 1
    finally:
        store.close()


def test_a_writer_kept_waiting_by_the_others_too_long_is_a_storage_error() -> None:
    gate, held, done = WriterGate(wait_s=0.05), threading.Event(), threading.Event()

    def hold() -> None:
        with gate:
            held.set()
            done.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    try:
        with pytest.raises(StorageError, match=r"^store: database is locked: waited 0\.05s"), gate:
            pass
    finally:
        done.set()
        holder.join()
    with gate, gate:  # free again, and a thread's nested transaction does not wait on itself
        pass


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.sync_feeds([("A", "https://a/")], datetime(2024, 1, 1))


def test_sqlite_runs_in_wal_mode(db_url: str) -> None:
    store = Store.open(db_url)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
    store.close()


def test_an_unusable_database_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StorageError, match=r"^store: cannot open database: "):
        Store.open(f"sqlite:///{tmp_path / 'dir.db'}")


def test_nul_characters_from_feeds_are_stored_without_them(store: Store) -> None:
    feed = _feed_id(store)
    entry = Entry("k\x00", "ti\x00tle", None, None, NOW, "<p>a\x00b</p>", "a\x00b", "", "")
    assert store.save_poll(feed, RESULT, [entry], {}, {}, NOW, LATER).new == 1
    assert store.known_keys(feed, ["k"]) == {"k"}


def test_nul_and_lone_surrogates_in_non_ascii_text_are_stored_without_them(store: Store) -> None:
    """The last guard before the driver: ASCII text takes a fast path, other text the
    surrogate scan; both lose their NULs."""
    feed = _feed_id(store)
    entry = Entry(
        "ключ\x00", "Обмін\ud800 полоненими", None, None, NOW, "<p>\udfffа\x00б</p>", "а\x00б", "", ""
    )
    assert store.save_poll(feed, RESULT, [entry], {}, {}, NOW, LATER).new == 1
    assert store.known_keys(feed, ["ключ"]) == {"ключ"}
    [stored] = [a.entry for batch in store.read_articles()[1] for a in batch]
    assert (stored.title, stored.summary_html, stored.summary_text) == (
        "Обмін\ufffd полоненими",
        "<p>\ufffdаб</p>",
        "аб",
    )


def test_claiming_nothing_and_a_database_that_does_not_answer(store: Store) -> None:
    assert store.claim_feeds(NOW, timedelta(minutes=1), "me", 0) == []
    store.ping()
    gone = Store(create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none"))
    with pytest.raises(StorageError, match=r"^store: database does not answer: "):
        gone.ping()
    with pytest.raises(StorageError, match=r"^store: .*(refused|connect)"):
        gone.feeds()


def test_equally_due_feeds_are_claimed_in_id_order_however_the_rows_were_updated(store: Store) -> None:
    """PostgreSQL returns rows that tie on ``next_poll_at`` in the order its heap holds
    them, and an update moves a row to the end: the claim's order was the update order.
    It is soonest first, then by id, on both databases (the schedule model found it: its
    bundles took the claim's order, so the same example drew different feeds)."""
    store.sync_feeds([(f"Feed {n}", f"https://news.example/{n}.xml") for n in range(5)], NOW)
    ids = [f.id for f in store.feeds()]
    for feed_id in reversed(ids):  # each update writes a new row version at the heap's end
        store.record_failure(feed_id, "fetch: refused", NOW, NOW)
    claimed = store.claim_feeds(NOW, timedelta(minutes=5), "me", 5)
    assert [f.id for f in claimed] == sorted(ids)


def test_a_lease_a_fast_clock_wrote_does_not_hold_its_feed_or_messages_for_as_long(store: Store) -> None:
    """A daemon whose clock ran 400 days ahead (a VM restored, NTP stepping back) leased a
    feed and claimed a message until then, and died. Nobody could claim either until the
    wrong date came round; a lease further ahead than any claim made now could be (the
    lease and ``CLOCK_SLACK``) is free. One that may be another daemon's, within the
    slack of its clock, is not."""
    feed = _feed_id(store)
    store.save_poll(feed, RESULT, [_entry("k")], {"k": [_match("r")]}, {"r": ["a"]}, NOW, NOW)
    lease = timedelta(minutes=2)
    ahead = NOW + timedelta(days=400)
    assert [f.id for f in store.claim_feeds(ahead, lease, "fast", 5, due_only=False)] == [feed]
    assert len(store.claim_due(ahead, lease).alerts) == 1
    assert [f.id for f in store.claim_feeds(NOW, lease, "right", 5, due_only=False)] == [feed]
    assert store.due_channels(NOW, lease=lease) == ["a"]
    assert len(store.claim_due(NOW, lease).alerts) == 1

    skewed = NOW + timedelta(hours=6)  # another daemon's clock, six hours ahead: its lease holds
    assert [f.id for f in store.claim_feeds(skewed + 2 * lease, lease, "skewed", 5, due_only=False)] == [feed]
    assert store.claim_feeds(NOW + 2 * lease, lease, "right", 5, due_only=False) == []
