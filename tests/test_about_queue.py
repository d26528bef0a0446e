"""The about queue on SQLite and PostgreSQL: a poll queues in its own transaction, claims
are owned and expire, a late owner settles nothing, failures back off and then give up
with their reason, pruned articles leave the queue, and two daemons share it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from monitor.app import App
from monitor.cli import main
from monitor.config import load_settings
from monitor.models import Entry, Match, Snippet
from monitor.store import PollResult, Store
from monitor.store.about_queue import (
    FIRST_BACKOFF,
    LONGEST_BACKOFF,
    MAX_ATTEMPTS,
    backoff,
)
from monitor.store.tables import ABOUT_QUEUE, ARTICLES

NOW = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)
URL = "https://news.example/feed"
MEANING = Match("energy", "summary", (), Snippet("strikes on the grid [meaning: similarity 0.61]", ()))


@pytest.fixture
def store(any_db_url: str) -> Iterator[Store]:
    store = Store.open(any_db_url)
    yield store
    store.close()


def _entry(key: str) -> Entry:
    return Entry(key, f"title {key}", f"https://news.example/{key}", None, NOW, "", f"text {key}", "", "")


def poll(store: Store, keys: Sequence[str], about: Sequence[str], when: datetime = NOW) -> dict[str, int]:
    """One poll's transaction: these entries stored, ``about`` of them queued; key -> id."""
    store.sync_feeds([("News", URL)], when)
    feed = next(f.id for f in store.feeds() if f.url == URL)
    entries = [_entry(k) for k in keys]
    store.save_poll(
        feed, PollResult(None, None, "News"), entries, {}, {}, when, when + timedelta(hours=1), about=about
    )
    query = select(ARTICLES.c.key, ARTICLES.c.id).where(ARTICLES.c.feed_id == feed, ARTICLES.c.key.in_(keys))
    with store.reading() as conn:
        return {str(key): int(article_id) for key, article_id in conn.execute(query)}


def test_a_poll_queues_only_the_entries_it_names_and_a_claim_reads_them_back(store: Store) -> None:
    ids = poll(store, ["a", "b", "c"], about=["a", "c"])
    claim = store.claim_about(NOW, LEASE, "w1", 10)
    assert [(i.article_id, i.feed, i.entry.key, i.attempts) for i in claim.items] == [
        (ids["a"], "News", "a", 0),
        (ids["c"], "News", "c", 0),
    ]
    assert claim.items[0].entry.summary_text == "text a", "the article as stored"
    assert store.claim_about(NOW, LEASE, "w2", 10).items == (), "claimed rows are not claimed twice"
    assert store.about_backlog().pending == 2


def test_a_stored_entry_is_queued_once_even_if_named_again(store: Store) -> None:
    poll(store, ["a"], about=["a"])
    poll(store, ["a"], about=["a"])  # a re-poll: the entry exists, nothing is inserted
    assert store.about_backlog().pending == 1


def test_settling_a_claim_stores_the_matches_and_deletes_the_rows(store: Store) -> None:
    ids = poll(store, ["a", "b"], about=["a", "b"])
    claim = store.claim_about(NOW, LEASE, "w1", 10)
    saved = store.save_about(claim, {ids["a"]: [MEANING]}, {"energy": ["hook"]}, NOW)
    assert (saved.matched, saved.queued) == (1, 1)
    assert store.about_backlog().pending == 0
    [alert] = store.claim_due(NOW, LEASE).alerts
    assert alert.rules == ("energy",) and "similarity 0.61" in alert.snippet.text


def test_an_expired_claim_goes_to_another_owner_and_the_late_one_writes_nothing(store: Store) -> None:
    ids = poll(store, ["a"], about=["a"])
    late = store.claim_about(NOW, LEASE, "w1", 10)
    assert store.claim_about(NOW + LEASE / 2, LEASE, "w2", 10).items == ()
    later = NOW + LEASE + timedelta(seconds=1)
    owner = store.claim_about(later, LEASE, "w2", 10)
    assert [i.article_id for i in owner.items] == [ids["a"]]

    saved = store.save_about(late, {ids["a"]: [MEANING]}, {"energy": ["hook"]}, later)
    assert saved.matched == 0 and saved.delivery_ids == (), "the late claim wrote no alert"
    assert store.fail_about(late.token, {ids["a"]: "late"}, later) == []
    assert store.about_backlog().pending == 1, "still the new owner's"

    assert store.save_about(owner, {ids["a"]: [MEANING]}, {"energy": ["hook"]}, later).matched == 1
    assert store.about_backlog().pending == 0


def test_a_failure_backs_off_then_gives_up_with_its_reason(store: Store) -> None:
    ids = poll(store, ["a"], about=["a"])
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claim = store.claim_about(now, LEASE, "w1", 10)
        assert [i.attempts for i in claim.items] == [attempt - 1]
        gave_up = store.fail_about(claim.token, {ids["a"]: f"about: the model failed ({attempt})"}, now)
        assert gave_up == ([ids["a"]] if attempt == MAX_ATTEMPTS else [])
        assert store.claim_about(now + backoff(attempt) - timedelta(seconds=1), LEASE, "w1", 10).items == ()
        now += backoff(attempt)
    assert store.claim_about(now + timedelta(days=30), LEASE, "w1", 10).items == (), "given up for good"
    backlog = store.about_backlog()
    assert (backlog.pending, backlog.gave_up) == (0, 1)
    assert store.about_failures() == [(ids["a"], "title a", f"about: the model failed ({MAX_ATTEMPTS})")]


def test_released_and_dropped_rows(store: Store) -> None:
    poll(store, ["a", "b"], about=["a", "b"])
    claim = store.claim_about(NOW, LEASE, "w1", 10)
    first, second = (i.article_id for i in claim.items)
    store.release_about(claim.token, [first])
    store.drop_about(claim.token, [second])
    again = store.claim_about(NOW, LEASE, "w2", 10)
    assert [i.article_id for i in again.items] == [first]
    assert store.release_about_claims() == 1
    assert store.about_backlog().pending == 1


def test_the_backlog_says_since_when_the_oldest_waits(store: Store) -> None:
    assert store.about_backlog().oldest is None
    poll(store, ["a"], about=["a"])
    poll(store, ["b"], about=["b"], when=NOW + timedelta(hours=1))
    assert store.about_backlog().oldest == NOW


def test_pruned_articles_leave_the_queue(store: Store) -> None:
    poll(store, ["a", "b"], about=["a"])
    later = NOW + timedelta(days=40)
    pruned = store.prune(later, timedelta(days=30), None)
    assert pruned.articles == 2
    assert store.about_backlog().pending == 0


@pytest.mark.postgres
def test_two_daemons_claiming_at_once_never_take_the_same_row(pg_url: str) -> None:
    stores = [Store.open(pg_url) for _ in range(2)]
    try:
        poll(stores[0], [f"k{i}" for i in range(40)], about=[f"k{i}" for i in range(40)])
        barrier = threading.Barrier(2)
        taken: dict[int, list[int]] = {}

        def claim(n: int) -> None:
            barrier.wait()
            got: list[int] = []
            while items := stores[n].claim_about(NOW, LEASE, f"w{n}", 3).items:
                got += [i.article_id for i in items]
            taken[n] = got

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not set(taken[0]) & set(taken[1])
        assert len(taken[0]) + len(taken[1]) == 40
    finally:
        for s in stores:
            s.close()


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-5, max_value=10_000))
def test_backoff_is_bounded_and_never_shrinks(attempts: int) -> None:
    wait = backoff(attempts)
    assert FIRST_BACKOFF <= wait <= LONGEST_BACKOFF
    assert backoff(attempts + 1) >= wait


def test_status_and_metrics_show_what_waits_and_what_was_given_up(
    db_url: str, write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(db_url)
    try:
        ids = poll(store, ["a", "b"], about=["a", "b"])
        now = NOW
        for _ in range(MAX_ATTEMPTS):
            claim = store.claim_about(now, LEASE, "w1", 1)
            store.fail_about(claim.token, {ids["a"]: "about: the model failed on this entry: boom"}, now)
            now += LONGEST_BACKOFF
    finally:
        store.close()
    config = write_config(
        f"database: {db_url}\nchannels:\n  hook: json://127.0.0.1:9/x\n"
        f"feeds:\n  - name: News\n    url: {URL}\n"
        "rules:\n  - name: r\n    any: [x]\n    notify: [hook]\n"
    )
    assert main(["status", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    waiting = "About rules: 1 article(s) waiting for the model (oldest queued 2026-05-31 12:00), 1 given up."
    assert waiting in out
    assert "gave up: title a (article" in out and "the model failed on this entry: boom" in out
    assert main(["status", "--json", "-c", str(config)]) == 0
    about = json.loads(capsys.readouterr().out)["about"]
    assert (about["pending"], about["gave_up"]) == (1, 1)
    assert about["failures"][0]["error"].endswith("boom")

    settings = load_settings(config)
    with App.from_settings(settings) as app:
        text = app.metrics.render().decode()
    assert 'monitor_about_queue{state="pending"} 1.0' in text
    assert 'monitor_about_queue{state="gave_up"} 1.0' in text


def test_a_huge_failure_reason_is_kept_bounded(store: Store) -> None:
    ids = poll(store, ["a"], about=["a"])
    claim = store.claim_about(NOW, LEASE, "w1", 10)
    store.fail_about(claim.token, {ids["a"]: "about: the model failed: " + "☠" * 100_000}, NOW)
    with store.reading() as conn:
        [why] = conn.execute(select(ABOUT_QUEUE.c.last_error)).scalars()
    assert why is not None and why.startswith("about: the model failed: ") and len(why) == 1000
