"""The outbox's claim protocol against a model, in any order hypothesis can find.

Workers claim, send, fail, renew, release and defer deliveries while the clock moves
and leases run out; an operator makes messages due. After every step the database must
agree with a plain model of the protocol (``monitor.store.outbox``): a claim returns
exactly the due, unclaimed rows (oldest first), only the current owner of a row can
settle it (so no row is settled as sent twice), and the counts ``monitor status`` shows
follow. At the end, with the clock past every lease and retry, one honest worker must
be able to send everything not dead: nothing stays claimed or pending for ever.

The real Store, on a SQLite file and on PostgreSQL; each example starts from an empty
outbox and queues its own deliveries.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, consumes, invariant, rule
from sqlalchemy import delete

from monitor.store import Store
from monitor.store.outbox import Claim
from monitor.store.tables import DELIVERIES as DELIVERY_ROWS
from monitor.store.tables import QUOTA
from tests.delivery import NOW, queue
from tests.state_machines import LeasedRow, StoreMachine, run_on

LEASE = timedelta(minutes=2)
DELIVERIES = 6
_examples = itertools.count()


class OutboxModel(StoreMachine):
    claims = Bundle("claims")

    def __init__(self) -> None:
        super().__init__()
        store = self.store
        with store.transaction() as conn:  # an empty outbox, whatever the last example left
            conn.execute(delete(DELIVERY_ROWS))
            conn.execute(delete(QUOTA))
        example = next(_examples)
        ids = queue(store, [f"story {example}-{n}" for n in range(DELIVERIES)], ["hook"])
        assert len(ids) == DELIVERIES
        self.rows = {i: LeasedRow(i) for i in ids}
        self.now = NOW

    def _expected_claim(self, limit: int) -> list[int]:
        due = sorted((r.due, r.id) for r in self.rows.values() if r.claimable(self.now))
        return [i for _, i in due[:limit]]

    @rule(target=claims, limit=st.integers(1, DELIVERIES))
    def claim(self, limit: int) -> Claim:
        expected = self._expected_claim(limit)
        claim = self.store.claim_due(self.now, LEASE, limit=limit)
        assert claim.ids == expected
        for i in claim.ids:
            self.rows[i].token, self.rows[i].until = claim.token, claim.until
        return claim

    @rule(claim=consumes(claims))
    def send(self, claim: Claim) -> None:
        ours = {i for i in claim.ids if self.rows[i].held_by(claim.token)}
        assert self.store.mark_sent(claim.token, claim.ids, self.now) == ours
        for i in ours:
            row = self.rows[i]
            row.state, row.attempts = "sent", row.attempts + 1
            row.released()

    @rule(claim=consumes(claims), retry=st.one_of(st.none(), st.integers(0, 600)))
    def fail(self, claim: Claim, retry: int | None) -> None:
        retry_at = None if retry is None else self.now + timedelta(seconds=retry)
        for i in claim.ids:
            row = self.rows[i]
            expected = row.held_by(claim.token)
            assert self.store.mark_failed(claim.token, i, "notify: refused", retry_at) is expected
            if expected:
                row.attempts += 1
                row.released()
                if retry_at is None:
                    row.state = "dead"
                else:
                    row.due = retry_at

    @rule(claim=claims, seconds=st.integers(0, 600))
    def renew(self, claim: Claim, seconds: int) -> None:
        ours = [r for r in self.rows.values() if r.held_by(claim.token)]
        assert self.store.renew(claim.token, self.now + timedelta(seconds=seconds)) == len(ours)
        for row in ours:
            row.until = self.now + timedelta(seconds=seconds)

    @rule(claim=consumes(claims))
    def release(self, claim: Claim) -> None:
        ours = [r for r in self.rows.values() if r.held_by(claim.token)]
        assert self.store.release(claim.token) == len(ours)
        for row in ours:
            row.released()

    @rule(claim=consumes(claims), seconds=st.integers(0, 7200))
    def defer(self, claim: Claim, seconds: int) -> None:
        until = self.now + timedelta(seconds=seconds)
        ours = [self.rows[i] for i in claim.ids if self.rows[i].held_by(claim.token)]
        assert self.store.defer(claim.token, claim.ids, until) == len(ours)
        for row in ours:
            row.due = until
            row.released()

    @rule()
    def make_due(self) -> None:
        """``monitor deliveries retry``: pending and dead rows nobody is sending are due now."""
        chosen = [
            r
            for r in self.rows.values()
            if r.state in ("pending", "dead") and (r.until is None or r.until <= self.now)
        ]
        assert self.store.make_due(self.now) == len(chosen)
        for row in chosen:
            row.state, row.due = "pending", self.now

    @rule(seconds=st.integers(0, 400))
    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @invariant()
    def counts_agree(self) -> None:
        [status] = self.store.channel_statuses()
        rows = self.rows.values()
        assert status.sent == sum(r.state == "sent" for r in rows)
        assert status.dead == sum(r.state == "dead" for r in rows)
        assert status.pending == sum(r.state == "pending" and r.attempts == 0 for r in rows)
        assert status.retrying == sum(r.state == "pending" and r.attempts > 0 for r in rows)

    def teardown(self) -> None:
        """At the end one honest worker, past every lease and retry, claims and sends
        everything that is not dead: nothing stays claimed or pending for ever."""
        rows = self.rows.values()
        ends = [self.now, *(r.due for r in rows), *(r.until for r in rows if r.until)]
        later = max(ends) + timedelta(seconds=1)  # every retry due, every lease (renewed or not) over
        claim = self.store.claim_due(later, LEASE, limit=100)
        waiting = sorted(r.id for r in self.rows.values() if r.state == "pending")
        assert sorted(claim.ids) == waiting
        assert self.store.mark_sent(claim.token, claim.ids, later) == set(waiting)
        [status] = self.store.channel_statuses()
        assert (status.pending, status.retrying) == (0, 0)
        assert status.sent + status.dead == DELIVERIES


def test_the_claim_protocol_agrees_with_its_model(any_store: Store) -> None:
    run_on(OutboxModel, any_store)
