"""Feed leases against a model, in any order hypothesis can find.

Two pollers claim due feeds, finish polls (success, failure, a saved poll), renew and
release leases while the clock moves and leases run out. After every step the feeds
table must agree with a plain model of the protocol (``monitor.store.schedule``): a
claim takes exactly the due feeds nobody holds (the soonest first), a poll's outcome is
written only while its lease still holds the feed (otherwise LeaseLost, and nothing
changes), and renewing reports exactly the leases lost. At the end, with the clock past
every lease and schedule, one poller claims every feed: no feed stays leased for ever.

The real Store, on a SQLite file and on PostgreSQL; each example starts from feeds
nobody holds, due now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, multiple, rule
from sqlalchemy import select, update

from monitor.errors import LeaseLost
from monitor.models import FeedState
from monitor.store import PollResult, Store
from monitor.store.tables import FEEDS
from tests.delivery import NOW
from tests.state_machines import StoreMachine, run_on

LEASE = timedelta(minutes=5)
FEEDS_COUNT = 4
OWNERS = st.sampled_from(["host-1", "host-12"])  # one a prefix of the other, as hostnames are


@dataclass
class Feed:
    """What the model knows of one feed's row."""

    id: int
    next_at: datetime = NOW
    holder: str | None = None
    until: datetime | None = None
    errors: int = 0

    def claimable(self, now: datetime) -> bool:
        return self.next_at <= now and (self.until is None or self.until <= now)

    def settle(self, next_at: datetime, errors: int) -> None:
        self.next_at, self.errors, self.holder, self.until = next_at, errors, None, None


class LeaseModel(StoreMachine):
    polls = Bundle("polls")

    def __init__(self) -> None:
        super().__init__()
        store = self.store
        store.sync_feeds([(f"Feed {n}", f"https://news.example/{n}.xml") for n in range(FEEDS_COUNT)], NOW)
        with store.transaction() as conn:  # whatever the last example left: nobody holds anything
            conn.execute(
                update(FEEDS).values(next_poll_at=NOW, leased_by=None, leased_until=None, error_count=0)
            )
        self.feeds = {f.id: Feed(f.id) for f in store.feeds()}
        assert len(self.feeds) == FEEDS_COUNT
        self.now = NOW

    @rule(target=polls, owner=OWNERS, limit=st.integers(1, FEEDS_COUNT))
    def claim(self, owner: str, limit: int) -> object:
        due = sorted((f.next_at, f.id) for f in self.feeds.values() if f.claimable(self.now))
        expected = {i for _, i in due[:limit]}
        claimed = self.store.claim_feeds(self.now, LEASE, owner, limit)
        assert {f.id for f in claimed} == expected
        for state in claimed:
            assert state.lease is not None and state.lease.startswith(owner + "#")
            feed = self.feeds[state.id]
            feed.holder, feed.until = state.lease, self.now + LEASE
        return multiple(*claimed)

    def _lands(self, poll: FeedState, write: Callable[[], object]) -> bool:
        """Whether the poll's write lands, as the model expects: while its lease holds
        the feed. Otherwise the write must raise LeaseLost (and change nothing)."""
        if self.feeds[poll.id].holder == poll.lease:
            return True
        with pytest.raises(LeaseLost):
            write()
        return False

    @rule(poll=polls, minutes=st.integers(0, 30), news=st.booleans())
    def succeed(self, poll: FeedState, minutes: int, news: bool) -> None:
        """A poll that worked: nothing new (a 304), or news saved in one transaction
        whose lease is checked first (``claim_held``)."""
        next_at = self.now + timedelta(minutes=minutes)

        def write() -> None:
            if news:
                result = PollResult(None, None, "News")
                self.store.save_poll(poll.id, result, [], {}, {}, self.now, next_at, lease=poll.lease)
            else:
                self.store.record_unchanged(poll.id, self.now, next_at, lease=poll.lease)

        if self._lands(poll, write):
            write()
            self.feeds[poll.id].settle(next_at, 0)

    @rule(poll=polls, minutes=st.integers(0, 30))
    def fail(self, poll: FeedState, minutes: int) -> None:
        next_at = self.now + timedelta(minutes=minutes)

        def write() -> int:
            return self.store.record_failure(poll.id, "fetch: refused", self.now, next_at, lease=poll.lease)

        if self._lands(poll, write):
            feed = self.feeds[poll.id]
            assert write() == feed.errors + 1
            feed.settle(next_at, feed.errors + 1)

    @rule(held=st.lists(polls, max_size=3), minutes=st.integers(0, 20))
    def renew(self, held: list[FeedState], minutes: int) -> None:
        until = self.now + timedelta(minutes=minutes)
        pairs = [(p.id, p.lease) for p in held if p.lease is not None]
        expected_lost = [i for i, lease in pairs if self.feeds[i].holder != lease]
        assert self.store.renew_leases(pairs, until) == expected_lost
        for feed_id, lease in pairs:
            if self.feeds[feed_id].holder == lease:
                self.feeds[feed_id].until = until

    @rule(owner=OWNERS)
    def release(self, owner: str) -> None:
        """A poller shutting down gives back its leases."""
        mine = [f for f in self.feeds.values() if f.holder is not None and f.holder.startswith(owner + "#")]
        assert self.store.release_feeds(owner) == len(mine)
        for feed in mine:
            feed.holder, feed.until = None, None

    @rule(seconds=st.integers(0, 600))
    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @invariant()
    def table_agrees(self) -> None:
        columns = (FEEDS.c.next_poll_at, FEEDS.c.leased_by, FEEDS.c.leased_until, FEEDS.c.error_count)
        with self.store.reading() as conn:
            found = {row[0]: tuple(row[1:]) for row in conn.execute(select(FEEDS.c.id, *columns))}
        assert found == {f.id: (f.next_at, f.holder, f.until, f.errors) for f in self.feeds.values()}

    def teardown(self) -> None:
        """Past every lease and schedule, one poller gets every feed."""
        feeds = self.feeds.values()
        later = max([self.now, *(f.next_at for f in feeds), *(f.until for f in feeds if f.until)])
        claimed = self.store.claim_feeds(later, LEASE, "gamma", FEEDS_COUNT)
        assert {f.id for f in claimed} == set(self.feeds)


def test_feed_leases_agree_with_their_model(any_store: Store) -> None:
    run_on(LeaseModel, any_store)
