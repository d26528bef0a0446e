"""Owned delivery claims on SQLite and PostgreSQL: a late worker cannot settle what another
now owns, a long send keeps its claim, one lane per channel per process, and
``max_per_hour`` held by the database when workers race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from monitor.deliver import Dispatch, _Heartbeat
from monitor.errors import NotifyError, StorageError
from monitor.store import Store
from tests.conftest import WAIT, Clock, RecordingNotifier
from tests.delivery import (
    NOW,
    GateNotifier,
    channel,
    courier,
    in_thread,
    policy,
    queue,
    rows,
    watching,
)

LEASE = timedelta(minutes=2)


@pytest.fixture
def store(any_db_url: str) -> Iterator[Store]:
    store = Store.open(any_db_url)
    yield store
    store.close()


def test_every_claim_has_its_own_token(store: Store) -> None:
    queue(store, ["a", "b"], ["hook"])
    first = store.claim_due(NOW, LEASE, limit=1)
    second = store.claim_due(NOW, LEASE, limit=1)
    assert first.token != second.token
    assert (first.until, len(first.alerts), len(second.alerts)) == (NOW + LEASE, 1, 1)
    assert store.claim_due(NOW, LEASE).alerts == ()


def test_an_expired_claim_taken_by_another_worker_cannot_be_settled_late(store: Store) -> None:
    [delivery] = queue(store, ["a"], ["hook"])
    late = store.claim_due(NOW, LEASE)
    later = NOW + LEASE + timedelta(seconds=1)
    owner = store.claim_due(later, LEASE)
    assert owner.ids == late.ids == [delivery]

    assert store.mark_sent(late.token, [delivery], later) == set()
    assert not store.mark_failed(late.token, delivery, "notify: late", later + LEASE)
    assert store.defer(late.token, [delivery], later + LEASE) == 0
    assert store.renew(late.token, later + 10 * LEASE) == 0
    assert store.release(late.token) == 0
    assert store.claim_due(later, LEASE).alerts == (), "the new owner still holds it"

    assert store.mark_sent(owner.token, [delivery], later) == {delivery}
    [status] = store.channel_statuses()
    assert (status.sent, status.pending, status.retrying) == (1, 0, 0)


def test_an_expired_claim_nobody_took_is_still_settled_by_its_owner(store: Store) -> None:
    [delivery] = queue(store, ["a"], ["hook"])
    claim = store.claim_due(NOW, LEASE)
    assert store.mark_sent(claim.token, [delivery], NOW + 3 * LEASE) == {delivery}


def test_renew_and_release(store: Store) -> None:
    ids = queue(store, ["a", "b"], ["hook"])
    claim = store.claim_due(NOW, LEASE)
    assert store.renew(claim.token, NOW + 3 * LEASE) == 2
    assert store.claim_due(NOW + 2 * LEASE, LEASE).alerts == ()
    assert store.mark_sent(claim.token, ids[:1], NOW) == {ids[0]}
    assert store.release(claim.token) == 1
    assert store.claim_due(NOW, LEASE).ids == ids[1:]


@pytest.mark.parametrize("fails", [False, True], ids=["then-sent", "then-failed"])
def test_a_worker_whose_claim_expired_mid_send_reports_it_lost(
    store: Store, clock: Clock, fails: bool
) -> None:
    queue(store, ["slow"], ["hook"])
    refusal = NotifyError("notify: hook: refused")
    gate = GateNotifier(hold=["slow"], raises={"slow": refusal} if fails else None)
    first = courier(store, gate, clock)
    thread, reports = in_thread(first.deliver)
    assert gate.entered.wait(WAIT)
    clock.advance(first.lease + timedelta(seconds=1))  # no heartbeat yet: lease/3 is 40 s away

    other = RecordingNotifier()
    assert courier(store, other, clock).deliver().sent == 1
    with watching("status=lost") as lost:
        gate.release.set()
        thread.join(WAIT)
        lost.wait_for(1)
    [outcome] = reports[0].outcomes
    assert outcome.status == "lost"
    assert [a.title for a in other.sent] == ["slow"]
    [status] = store.channel_statuses()
    assert (status.sent, status.pending) == (1, 0)


def test_a_send_longer_than_the_lease_renews_its_claim(store: Store, clock: Clock) -> None:
    queue(store, ["slow"], ["hook"])
    gate = GateNotifier(hold=["slow"])
    sender = courier(store, gate, clock, policy=policy(timeout=0.3))  # lease 1.2 s, renewed every 0.4 s
    with watching("renewed") as renewed:
        thread, reports = in_thread(sender.deliver)
        assert gate.entered.wait(WAIT)
        clock.advance(sender.lease * 10)
        renewed.wait_for(renewed.count + 2)  # the second one surely read the new time
        other = RecordingNotifier()
        assert courier(store, other, clock).deliver().outcomes == ()
        gate.release.set()
        thread.join(WAIT)
    assert [o.status for o in reports[0].outcomes] == ["sent"]
    assert other.sent == [] and [a.title for a in gate.sent] == ["slow"]


def test_one_sender_per_channel_per_process(store: Store, clock: Clock) -> None:
    titles = ["first", "b", "c", "d", "fifth", "sixth"]
    ids = queue(store, titles, ["hook"])
    gate = GateNotifier(hold=["first"])
    dispatch = Dispatch()
    lane = courier(store, gate, clock, dispatch=dispatch)
    thread, reports = in_thread(lane.deliver)
    assert gate.entered.wait(WAIT)
    url = store.engine.url.render_as_string(hide_password=False)
    claimed = rows(url, "SELECT id FROM deliveries WHERE claim_token IS NOT NULL ORDER BY id")
    assert [r[0] for r in claimed] == ids[: lane.claim_size], "a claim holds what fits in one lease"

    poll_thread = courier(store, gate, clock, dispatch=dispatch)  # same process: same lanes
    assert poll_thread.deliver(ids=[ids[4]]).outcomes == (), "the channel is busy: its lane sends it"
    gate.release.set()
    thread.join(WAIT)
    assert [o.delivery_id for o in reports[0].outcomes] == ids
    assert [a.title for a in gate.sent] == titles


def test_closing_starts_no_new_send(store: Store, clock: Clock) -> None:
    queue(store, ["first", "second"], ["hook"])
    gate = GateNotifier(hold=["first"])
    dispatch = Dispatch()
    thread, reports = in_thread(courier(store, gate, clock, dispatch=dispatch).deliver)
    assert gate.entered.wait(WAIT)
    dispatch.close()
    gate.release.set()
    thread.join(WAIT)
    assert [o.status for o in reports[0].outcomes] == ["sent"]
    assert courier(store, gate, clock, dispatch=dispatch).deliver().outcomes == ()
    [status] = store.channel_statuses()
    assert (status.sent, status.pending) == (1, 1)
    assert len(store.claim_due(NOW, LEASE).alerts) == 1, "the rest was never claimed"


@pytest.mark.parametrize("racers", [2, 4], ids=["two-threads", "four-threads"])
def test_max_per_hour_holds_when_workers_race(store: Store, clock: Clock, racers: int) -> None:
    """Workers of different processes (their own lanes) all inside a send at once."""
    size = courier(store, RecordingNotifier(), clock).claim_size
    limit = size * (racers - 1) + 1  # every racer gets at least one message to send
    titles = [f"alert {i}" for i in range(limit + 6)]
    queue(store, titles, ["pager"])
    together = threading.Barrier(racers)
    sends: list[str] = []

    class Racer(RecordingNotifier):
        first = True

        def send(self, alert: object) -> None:
            if self.first:  # every racer is mid-send before any goes on
                self.first = False
                together.wait(WAIT)
            sends.append(getattr(alert, "title", ""))

    channels = {"pager": channel(max_per_hour=limit)}
    workers = [in_thread(courier(store, Racer(), clock, channels=channels).deliver) for _ in range(racers)]
    for thread, _ in workers:
        thread.join(WAIT)
    outcomes = [o for _, reports in workers for o in reports[0].outcomes]
    assert len(sends) == limit, "the limit, no more"
    assert [o.status for o in outcomes].count("held") == 6
    assert store.quota_used("pager", clock()) == limit

    clock.advance(timedelta(hours=1))  # the next hour: the held ones go as one summary
    summary = RecordingNotifier()
    assert courier(store, summary, clock, channels=channels).deliver().sent == 6
    [(_, held, reason)] = summary.batches
    assert (len(held), reason) == (6, "summary")
    assert store.quota_used("pager", clock()) == 0


def test_the_quota_is_per_channel_and_per_clock_hour(store: Store) -> None:
    ids = queue(store, ["a", "b", "c"], ["pager"])
    at = NOW + timedelta(minutes=59)
    claim = store.claim_due(at, LEASE, channel="pager", limit=3, per_hour=2)
    assert (claim.ids, [a.delivery_id for a in claim.held]) == (ids[:2], ids[2:])
    assert store.quota_used("pager", NOW) == 2 and store.quota_used("other", NOW) == 0
    assert store.claim_due(at, LEASE, channel="pager", per_hour=2).alerts == ()
    next_hour = NOW + timedelta(hours=1)
    assert store.quota_used("pager", next_hour) == 0
    [held] = store.claim_due(next_hour, LEASE, batched=True).alerts
    assert (held.delivery_id, held.batched) == (ids[2], True)
    assert store.mark_sent(claim.token, ids[:2], at) == set(ids[:2])
    queue(store, ["d"], ["pager"], when=next_hour)
    assert len(store.claim_due(next_hour, LEASE, channel="pager", per_hour=2).alerts) == 1
    assert store.quota_used("pager", next_hour) == 1
    assert store.quota_used("pager", NOW) == 0, "a new hour forgets the ones before"


def test_a_heartbeat_goes_on_after_a_database_error_and_stops_when_its_claim_is_gone() -> None:
    answers: list[int | StorageError] = [StorageError("store: database is locked"), 1, 0]
    calls = threading.Semaphore(0)

    def renew() -> int:
        answer = answers.pop(0)
        calls.release()
        if isinstance(answer, StorageError):
            raise answer
        return answer

    with watching("claim=t") as said, _Heartbeat(renew, 0.01, "t"):
        for _ in range(3):
            assert calls.acquire(timeout=WAIT)
        said.wait_for(3)
    messages = [r.getMessage() for r in said.records]
    assert "renew failed" in messages[0] and "renewed rows=1" in messages[1] and "status=lost" in messages[2]
    assert answers == [], "it stopped renewing once nothing was left to renew"
