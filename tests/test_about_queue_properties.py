"""The about queue's claim protocol against a model, in any order hypothesis can find.

Two owners (one's name a prefix of the other's, as hostnames are) claim rows, fail them,
release them, drop them and settle them while the clock moves, leases run out, failures
back off and later polls queue more articles (or name stored ones again, which queues
nothing). A claim that is never used again is a worker that died with it. After every
step the queue must agree with a plain model of the protocol
(``monitor.store.about_queue``): a claim takes exactly the due rows nobody holds (the
oldest first), only the claim that still holds a row can change it (a failure counts a
try and backs off, then gives up at ``MAX_ATTEMPTS``), and the backlog ``monitor
status`` shows follows. At the end, with the clock past every lease and every backoff,
one claim takes every pending row: nothing stays claimed or waiting for ever.

The real Store, on a SQLite file and on PostgreSQL; each example starts from an empty
queue and queues its own articles.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, invariant, rule
from sqlalchemy import delete, select, update

from monitor.store import Store
from monitor.store.about_queue import MAX_ATTEMPTS, AboutClaim, backoff
from monitor.store.tables import ABOUT_QUEUE
from tests.delivery import NOW
from tests.state_machines import LeasedRow, StoreMachine, run_on
from tests.test_about_queue import MEANING, poll

LEASE = timedelta(minutes=10)
ARTICLES_COUNT = 5
MORE_ARTICLES = 4  # queued by later polls, at most, in one example
OWNERS = st.sampled_from(["host-1", "host-12"])  # one a prefix of the other, as hostnames are
SUBSET = st.sets(st.integers(0, ARTICLES_COUNT - 1))  # positions among the example's rows
# Up to a couple of hours, and now and then exactly a lease or a backoff, to land on their edges.
EDGES = sorted({LEASE, *(backoff(n) for n in range(1, MAX_ATTEMPTS + 1))})
SECONDS = st.one_of(st.integers(0, 7200), st.sampled_from([int(e.total_seconds()) for e in EDGES]))
# How often the model already failed on each row: a few more failures reach gave_up.
TRIED = st.lists(st.sampled_from(range(MAX_ATTEMPTS)), min_size=ARTICLES_COUNT, max_size=ARTICLES_COUNT)
SOME = st.one_of(st.none(), SUBSET)  # None: the claim's own rows, as the about job passes them
_examples = itertools.count()


class AboutQueueModel(StoreMachine):
    claims = Bundle("claims")

    def __init__(self) -> None:
        super().__init__()
        store = self.store
        with store.transaction() as conn:  # an empty queue, whatever the last example left
            conn.execute(delete(ABOUT_QUEUE))
        example = next(_examples)
        keys = [f"story {example}-{n}" for n in range(ARTICLES_COUNT)]
        ids = sorted(poll(store, keys, about=keys, when=NOW).values())
        assert len(ids) == ARTICLES_COUNT
        self.ids = ids
        self.keys = keys
        self.rows = {i: LeasedRow(i) for i in ids}
        self.queued = dict.fromkeys(ids, NOW)
        self.now = NOW

    @initialize(tried=TRIED)
    def tried_before(self, tried: list[int]) -> None:
        """Rows the model already failed on (a daemon restarted with its queue)."""
        with self.store.transaction() as conn:
            for i, attempts in zip(self.ids, tried, strict=True):
                conn.execute(
                    update(ABOUT_QUEUE).where(ABOUT_QUEUE.c.article_id == i).values(attempts=attempts)
                )
                self.rows[i].attempts = attempts

    def _pick(self, claim: AboutClaim, subset: set[int] | None) -> list[int]:
        if subset is None:
            return [i.article_id for i in claim.items]
        return [self.ids[k] for k in sorted(subset)]

    @rule(fresh=st.integers(0, 2), again=st.sets(st.integers(0, ARTICLES_COUNT - 1), max_size=2))
    def poll_more(self, fresh: int, again: set[int]) -> None:
        """A later poll: ``fresh`` new articles queued now, and stored ones named again
        (settled, given up or waiting), which must queue nothing."""
        fresh = min(fresh, ARTICLES_COUNT + MORE_ARTICLES - len(self.keys))
        new = [f"{self.keys[0]}+{len(self.keys) + n}" for n in range(fresh)]
        named = new + [self.keys[k] for k in sorted(again)]
        ids = poll(self.store, named, about=named, when=self.now)
        self.keys += new
        for key in new:
            self.rows[ids[key]] = LeasedRow(ids[key], due=self.now)
            self.queued[ids[key]] = self.now

    @rule(target=claims, owner=OWNERS, limit=st.integers(1, ARTICLES_COUNT))
    def claim(self, owner: str, limit: int) -> AboutClaim:
        # Oldest first: by when the row was queued, then by id.
        due = sorted((self.queued[r.id], r.id) for r in self.rows.values() if r.claimable(self.now))
        claim = self.store.claim_about(self.now, LEASE, owner, limit)
        assert claim.token.startswith(owner + "#")
        assert [i.article_id for i in claim.items] == [i for _, i in due[:limit]]
        for item in claim.items:
            row = self.rows[item.article_id]
            assert item.attempts == row.attempts
            row.token, row.until = claim.token, self.now + LEASE
        return claim

    @rule(claim=claims, subset=SOME)
    def fail(self, claim: AboutClaim, subset: set[int] | None) -> None:
        """The model failed on these rows (some perhaps not this claim's at all)."""
        ids = self._pick(claim, subset)
        held = [self.rows[i] for i in ids if self.rows[i].held_by(claim.token)]
        gave_up = self.store.fail_about(claim.token, {i: "about: boom" for i in ids}, self.now)
        assert len(gave_up) == len(set(gave_up))
        assert sorted(gave_up) == sorted(r.id for r in held if r.attempts + 1 >= MAX_ATTEMPTS)
        for row in held:
            row.attempts += 1
            row.due = self.now + backoff(row.attempts)
            row.state = "gave_up" if row.attempts >= MAX_ATTEMPTS else "pending"
            row.released()

    @rule(claim=claims)
    def release(self, claim: AboutClaim) -> None:
        """A shutdown: the claim's rows go back untried."""
        self.store.release_about(claim.token, [i.article_id for i in claim.items])
        for item in claim.items:
            if self.rows[item.article_id].held_by(claim.token):
                self.rows[item.article_id].released()

    @rule(claim=claims, subset=SOME)
    def drop(self, claim: AboutClaim, subset: set[int] | None) -> None:
        """No about rule is open for these rows any more: deleted, if this claim holds them."""
        ids = self._pick(claim, subset)
        self.store.drop_about(claim.token, ids)
        for i in ids:
            if self.rows[i].held_by(claim.token):
                self.rows[i].state = "gone"
                self.rows[i].released()

    @rule(claim=claims, only=SOME, matched=st.booleans())
    def settle(self, claim: AboutClaim, only: set[int] | None, matched: bool) -> None:
        """``Store.save_about``: the claim's held rows (``only`` these, if given) are
        deleted; matches are written only for rows the claim still holds."""
        items = [i.article_id for i in claim.items]
        held = {i for i in items if self.rows[i].held_by(claim.token)}
        settle = None if only is None else self._pick(claim, only)
        # Matches only when every held row is settled, so no article is matched twice.
        found = {i: [MEANING] for i in items} if matched and settle is None else {}
        saved = self.store.save_about(claim, found, {"energy": []}, self.now, settle=settle)
        assert saved.matched == (len(held) if found else 0)
        for i in held & set(items if settle is None else settle):
            self.rows[i].state = "gone"
            self.rows[i].released()

    @rule(seconds=SECONDS)
    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @invariant()
    def backlog_agrees(self) -> None:
        rows = self.rows.values()
        backlog = self.store.about_backlog()
        pending = sum(r.state == "pending" for r in rows)
        assert backlog.pending == pending
        assert backlog.gave_up == sum(r.state == "gave_up" for r in rows)
        waiting = [self.queued[r.id] for r in rows if r.state == "pending"]
        assert backlog.oldest == min(waiting, default=None)

    @invariant()
    def table_agrees(self) -> None:
        columns = (
            ABOUT_QUEUE.c.state,
            ABOUT_QUEUE.c.attempts,
            ABOUT_QUEUE.c.not_before,
            ABOUT_QUEUE.c.claimed_by,
            ABOUT_QUEUE.c.claimed_until,
        )
        query = select(ABOUT_QUEUE.c.article_id, *columns)
        with self.store.reading() as conn:
            found = {row[0]: tuple(row[1:]) for row in conn.execute(query)}
        assert found == {
            r.id: (r.state, r.attempts, r.due, r.token, r.until)
            for r in self.rows.values()
            if r.state != "gone"
        }

    def teardown(self) -> None:
        """Past every lease and backoff, one claim takes every pending row."""
        rows = self.rows.values()
        ends = [self.now, *(r.due for r in rows), *(r.until for r in rows if r.until)]
        later = max(ends) + timedelta(seconds=1)
        claim = self.store.claim_about(later, LEASE, "host-2", 100)
        waiting = sorted((self.queued[r.id], r.id) for r in rows if r.state == "pending")
        assert [i.article_id for i in claim.items] == [i for _, i in waiting]
        self.store.save_about(claim, {}, {}, later)
        backlog = self.store.about_backlog()
        assert (backlog.pending, backlog.gave_up) == (0, sum(r.state == "gave_up" for r in rows))


def test_the_about_queue_agrees_with_its_model(any_store: Store) -> None:
    run_on(AboutQueueModel, any_store)
