"""The delivery step: claim due outbox rows one message at a time, send, settle.

Each channel has one lane per process: one thread at a time sends to it. So a daemon
that dies has at most one message per channel in flight (the at-least-once window),
and two sends never share an Apprise plugin object (which carries the message's key
in its headers). Channels are sent in parallel, so a dead mail server never delays Slack.

In a lane, individual alerts go first, each claimed on its own with an owner token and
a deadline that a heartbeat renews while the send runs (so a send longer than the lease
is never sent again by another worker). A channel with ``max_per_hour`` takes a unit of
its hour's quota in the database before each send; over the limit, the alert is held
for the next hour's summary. Then batched alerts (a digest or a summary) go as one message.

Any exception while rendering or sending one message is that message's failure: it is
retried on the backoff schedule with jitter (so a recovered server is not hit by every
retry at once), then becomes a dead letter with the reason. A bug (an exception that is
not one of ours) also logs its traceback, once per distinct error.
"""

from __future__ import annotations

import logging
import random
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType

from monitor.config import ChannelSpec, DeliverySettings, format_duration
from monitor.errors import MonitorError, NotifyError, StorageError
from monitor.faults import message
from monitor.models import Alert
from monitor.notify import Notifier
from monitor.store import Claim, Store
from monitor.text import one_line

log = logging.getLogger(__name__)
JITTER = 0.2
MAX_CHANNEL_THREADS = 8
BATCH_LIMIT = 1000  # alerts in one digest or summary message
_MAX_BUGS = 1000  # distinct bugs remembered for "traceback once"
MAX_UNSETTLED = 10_000  # sends remembered until the store records them (the oldest go first)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one delivery in this pass."""

    delivery_id: int
    channel: str
    title: str
    status: str  # sent | retry | dead | held | lost (another worker owns it now)
    error: str | None = None
    error_type: str | None = None  # NotifyError, or the type of the bug behind the failure


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery pass did."""

    outcomes: tuple[Outcome, ...] = field(default=())

    def _count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def sent(self) -> int:
        """Deliveries that reached every target."""
        return self._count("sent")

    @property
    def failed(self) -> int:
        """Deliveries that failed this time (retrying or dead)."""
        return self._count("retry") + self._count("dead")

    @property
    def dead(self) -> int:
        """Deliveries that ran out of retries in this pass."""
        return self._count("dead")


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the channel accepted whose claim the store did not settle (it refused the
    write: its lock held elsewhere past the busy timeout, a full disk, a failover)."""

    token: str
    alerts: tuple[Alert, ...]
    at: datetime


class Unsettled:
    """The sends this process made and could not record yet (``Sent``), oldest first.

    Their claims stay ours but stop being renewed; once the lease runs out they would be
    claimed and sent again. The next delivery pass records them before it claims
    anything, so the alert goes out once. Only a restart in between (or more than
    MAX_UNSETTLED of them, the oldest forgotten with a warning) leaves the outbox's
    at-least-once rule to send one again.
    """

    def __init__(self, limit: int = MAX_UNSETTLED) -> None:
        self._sends: list[Sent] = []
        self._out = 0  # sends taken and not yet settled or given back
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, sent: Sent) -> None:
        self._keep([sent], at_end=True)

    def take(self) -> list[Sent]:
        """Every remembered send, removed; the caller settles them, gives back
        (``give_back``) those it could not, then calls ``done`` with what it took."""
        with self._lock:
            taken, self._sends = self._sends, []
            self._out += len(taken)
        return taken

    def give_back(self, sends: Sequence[Sent]) -> None:
        """Sends ``take`` gave that are still unsettled: before any added since."""
        self._keep(sends, at_end=False)

    def done(self, taken: Sequence[Sent]) -> None:
        """What ``take`` gave is settled or given back: no longer out."""
        with self._lock:
            self._out -= len(taken)

    def _keep(self, sends: Sequence[Sent], *, at_end: bool) -> None:
        with self._lock:
            self._sends = [*self._sends, *sends] if at_end else [*sends, *self._sends]
            cut = max(0, len(self._sends) - self._limit)
            forgotten, self._sends = self._sends[:cut], self._sends[cut:]
        for old in forgotten:
            ids = [a.delivery_id for a in old.alerts]
            log.warning(
                "deliver claim=%s deliveries=%s unsettled (forgotten: may be sent again)", old.token, ids
            )

    def __len__(self) -> int:
        """The sends kept and those taken but not settled yet, read at one moment: 0
        means no pass holds an unrecorded send, so a claim cannot take one."""
        with self._lock:
            return len(self._sends) + self._out


class Dispatch:
    """Delivery state of one process, shared by every Courier of an App (one per config).

    One lane (a lock) per channel, the ``closing`` flag that stops new sends at
    shutdown, the bugs whose traceback was already logged, and the sends the store has
    not recorded yet (``Unsettled``).
    """

    def __init__(self) -> None:
        self._lanes: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._bugs: set[tuple[str, str, int]] = set()
        self.closing = threading.Event()
        self.unsettled = Unsettled()
        # One thread at a time settles them; the others wait, so none claims a delivery
        # (its lease run out) while another thread is about to settle it.
        self.settling = threading.Lock()

    @contextmanager
    def lane(self, channel: str) -> Iterator[bool]:
        """Take the channel's lane if it is free: True if this thread may send to it."""
        with self._guard:
            lock = self._lanes.setdefault(channel, threading.Lock())
        mine = lock.acquire(blocking=False)
        try:
            yield mine
        finally:
            if mine:
                lock.release()

    def close(self) -> None:
        """Start no new send (the one in flight on each lane finishes)."""
        self.closing.set()

    def first_time(self, bug: BaseException) -> bool:
        """True the first time this kind of bug (type and the line raising it) is seen."""
        frames = traceback.extract_tb(bug.__traceback__)
        where = (frames[-1].filename, frames[-1].lineno or 0) if frames else ("", 0)
        key = (type(bug).__qualname__, *where)
        with self._guard:
            if key in self._bugs:
                return False
            if len(self._bugs) < _MAX_BUGS:
                self._bugs.add(key)
            return True


class _Heartbeat:
    """Renews a claim every ``every`` seconds while a send runs (a thread of its own)."""

    def __init__(self, renew: Callable[[], int], every: float, token: str) -> None:
        self._renew = renew
        self._every = every
        self._token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deliver-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                rows = self._renew()
            except StorageError as e:  # the claim may expire: the documented window
                log.warning('deliver claim=%s renew failed error="%s"', self._token, e)
                continue
            if rows == 0:
                log.warning("deliver claim=%s status=lost (settled, or taken by another worker)", self._token)
                return
            log.debug("deliver claim=%s renewed rows=%d", self._token, rows)


class Courier:
    """Moves messages from the outbox to the channels."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        policy: DeliverySettings,
        clock: Callable[[], datetime],
        channels: Mapping[str, ChannelSpec] | None = None,
        rng: random.Random | None = None,
        observe: Callable[[Outcome], None] | None = None,
        *,
        dispatch: Dispatch | None = None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._policy = policy
        self._clock = clock
        self._channels = channels or {}
        self._rng = rng or random.Random()
        self._observe = observe
        self._dispatch = dispatch or Dispatch()
        self._redact = redact

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is ours before another worker may take it."""
        return self._policy.timeout * 4

    @property
    def claim_size(self) -> int:
        """Individual messages per claim: as many as fit in one lease at ``delivery.timeout`` each.

        Sends are one at a time and renewed while they run, so this bounds only how many
        messages a crashed worker strands until its claim expires (never duplicates).
        """
        return max(1, int(self.lease / self._policy.timeout))

    @property
    def heartbeat(self) -> float:
        """Seconds between renewals of a claim while its send runs: a third of the lease."""
        return self.lease.total_seconds() / 3

    def deliver(self, *, ids: Sequence[int] | None = None, limit: int = 1000) -> DeliveryReport:
        """Send every due delivery (or only ``ids``), each channel in its own thread.

        A channel this process is already sending to is skipped: its lane sends the
        rest, or the next pass does. ``limit`` bounds the individual messages per channel.
        """
        if self._dispatch.closing.is_set():
            return DeliveryReport()
        earlier, recorded = self.settle_earlier()
        if not recorded:  # the store still refuses to record: it would refuse a claim too
            return DeliveryReport(outcomes=tuple(earlier))
        channels = self._store.due_channels(self._clock(), ids=ids, lease=self.lease)
        if not channels:
            return DeliveryReport(outcomes=tuple(earlier))
        if len(channels) == 1:
            results = [self._channel(channels[0], ids, limit)]
        else:
            with ThreadPoolExecutor(min(len(channels), MAX_CHANNEL_THREADS), "deliver") as pool:
                results = list(pool.map(lambda c: self._channel(c, ids, limit), channels))
        return DeliveryReport(outcomes=(*earlier, *(o for batch in results for o in batch)))

    def settle_earlier(self, wait: float | None = None) -> tuple[list[Outcome], bool]:
        """Record the sends an earlier pass made and the store refused to record
        (``Unsettled``): their outcomes, and False when the store still refuses (the
        rest wait for the next pass). Every pass starts with it; the app tries once more
        when it closes, since a restart forgets them. ``wait``: at most this many seconds
        for another thread that is settling (then ``([], False)``); None waits for it."""
        unsettled, settling = self._dispatch.unsettled, self._dispatch.settling
        if not len(unsettled):
            return [], True  # the common case; a send added after this is too fresh to claim
        if not settling.acquire(timeout=-1 if wait is None else wait):
            return [], False
        try:
            sends = unsettled.take()
            try:
                return self._settle_taken(sends)
            finally:
                unsettled.done(sends)
        finally:
            settling.release()

    def _settle_taken(self, sends: list[Sent]) -> tuple[list[Outcome], bool]:
        outcomes: list[Outcome] = []
        for n, sent in enumerate(sends):
            try:
                settled = self._store.mark_sent(sent.token, [a.delivery_id for a in sent.alerts], sent.at)
            except StorageError as e:
                self._dispatch.unsettled.give_back(sends[n:])
                log.warning('deliver unsettled=%d status=waiting error="%s"', len(sends) - n, e)
                return outcomes, False
            except BaseException:  # a bug, or an interrupt: the sends stay remembered all the same
                self._dispatch.unsettled.give_back(sends[n:])
                raise
            settled_now = [
                Outcome(a.delivery_id, a.channel, a.title, "sent")
                if a.delivery_id in settled
                else self._lost(a)
                for a in sent.alerts
            ]
            log.info("deliver claim=%s status=sent settled=%d (sent earlier)", sent.token, len(settled))
            self._record(outcomes, settled_now)
        return outcomes, True

    def _settle(self, token: str, alerts: Sequence[Alert]) -> set[int]:
        """The store records that the channel accepted these alerts; when it refuses
        (StorageError), they are remembered for the next pass (``Unsettled``), never sent
        again by this process, and the error goes on to end this pass."""
        at = self._clock()
        try:
            return self._store.mark_sent(token, [a.delivery_id for a in alerts], at)
        except StorageError:
            self._dispatch.unsettled.add(Sent(token, tuple(alerts), at))
            raise

    def _channel(self, channel: str, ids: Sequence[int] | None, limit: int) -> list[Outcome]:
        outcomes: list[Outcome] = []
        with self._dispatch.lane(channel) as mine:
            if not mine:
                log.debug("deliver channel=%s busy (this process is sending to it)", channel)
                return outcomes
            try:
                self._drain(channel, ids, limit, outcomes)
            except StorageError as e:  # claims left behind expire by their deadline
                log.error('deliver channel=%s status=error error="%s"', channel, e)
        return outcomes

    def _drain(self, channel: str, ids: Sequence[int] | None, limit: int, outcomes: list[Outcome]) -> None:
        """Individual alerts a few per claim, one send at a time; then the batched ones at once."""
        tried: set[int] = set()
        while len(tried) < limit and not self._dispatch.closing.is_set():
            claim = self._store.claim_due(
                self._clock(),
                self.lease,
                channel=channel,
                ids=ids,
                batched=False,
                limit=min(self.claim_size, limit - len(tried)),
                per_hour=self._limit(channel),
            )
            claimed = {a.delivery_id for a in claim.alerts + claim.held}
            if not claimed:
                break
            if claimed & tried:  # settled nothing: never send one message twice in a pass
                self._store.release(claim.token)
                again = sorted(claimed & tried)
                log.warning("deliver channel=%s again=%s (back in one pass)", channel, again)
                break
            tried |= claimed
            self._record(outcomes, self._singles(claim))
        held = sum(1 for o in outcomes if o.status == "held")
        if held:
            limit_ = self._limit(channel)
            log.info("deliver channel=%s held=%d limit=%s/h (one summary next hour)", channel, held, limit_)
        if not self._dispatch.closing.is_set():
            batch = self._store.claim_due(
                self._clock(), self.lease, channel=channel, ids=ids, batched=True, limit=BATCH_LIMIT
            )
            if batch.alerts:
                self._record(outcomes, self._send_batch(channel, batch))

    def _singles(self, claim: Claim) -> list[Outcome]:
        """Send a claim's alerts in turn; at shutdown, give back those not started.

        Each send's heartbeat renews the claim only while that send runs, so sends that
        each end before their first renewal could together outlast the lease, and another
        worker take (and send) the last ones while this one still holds them. Before a
        send that starts with less than two thirds of the lease left, the claim is renewed
        first; if it is no longer ours, the rest are another worker's to send."""
        outcomes = [Outcome(a.delivery_id, a.channel, a.title, "held") for a in claim.held]
        until = claim.until
        for n, alert in enumerate(claim.alerts):
            if self._dispatch.closing.is_set():
                self._store.release(claim.token)
                break
            now = self._clock()
            if n and until - now < self.lease * 2 / 3:
                until = now + self.lease
                if not self._store.renew(claim.token, until):
                    outcomes += [self._lost(a) for a in claim.alerts[n:]]
                    break
            outcomes.append(self._single(claim, alert))
        return outcomes

    def _record(self, outcomes: list[Outcome], new: list[Outcome]) -> None:
        outcomes += new
        if self._observe is not None:
            for outcome in new:
                self._observe(outcome)

    def _limit(self, channel: str) -> int | None:
        spec = self._channels.get(channel)
        return None if spec is None else spec.max_per_hour

    def _single(self, claim: Claim, alert: Alert) -> Outcome:
        failure = self._attempt(claim, lambda: self._notifier.send(alert))
        if failure is not None:
            return self._fail(claim.token, alert, failure)
        if not self._settle(claim.token, [alert]):
            return self._lost(alert)
        log.info(
            'deliver channel=%s delivery=%d status=sent feed="%s" rules="%s"',
            alert.channel,
            alert.delivery_id,
            alert.feed,
            ",".join(alert.rules),
        )
        return Outcome(alert.delivery_id, alert.channel, alert.title, "sent")

    def _send_batch(self, channel: str, claim: Claim) -> list[Outcome]:
        spec = self._channels.get(channel)
        reason = "digest" if spec is not None and spec.digest else "summary"
        alerts = list(claim.alerts)
        failure = self._attempt(claim, lambda: self._notifier.send_batch(channel, alerts, reason))
        if failure is not None:
            return [self._fail(claim.token, a, failure) for a in alerts]
        settled = self._settle(claim.token, alerts)
        log.info("deliver channel=%s status=sent %s=%d", channel, reason, len(settled))
        return [
            Outcome(a.delivery_id, channel, a.title, "sent") if a.delivery_id in settled else self._lost(a)
            for a in alerts
        ]

    def _attempt(self, claim: Claim, send: Callable[[], None]) -> Exception | None:
        """Run one send under a heartbeat; any exception is this message's failure."""

        def renew() -> int:
            return self._store.renew(claim.token, self._clock() + self.lease)

        with _Heartbeat(renew, self.heartbeat, claim.token):
            try:
                send()
            except Exception as e:  # rendering, a template, a plugin: this message's failure only
                return e
        return None

    def _lost(self, alert: Alert) -> Outcome:
        log.warning(
            "deliver channel=%s delivery=%d status=lost (its claim expired and another worker took it;"
            " that worker settles it)",
            alert.channel,
            alert.delivery_id,
        )
        return Outcome(alert.delivery_id, alert.channel, alert.title, "lost")

    def _reason(self, alert: Alert, error: Exception) -> tuple[str, str]:
        """The failure as stored (redacted, one line) and its type; a bug's traceback, once."""
        bug = error.__cause__ if isinstance(error, NotifyError) else error
        text = (
            message(error)
            if isinstance(error, NotifyError)
            else f"deliver: {type(error).__name__}: {message(error)}"
        )
        reason = self._redact(one_line(text, 1000))  # one line: no NUL, no lone surrogate
        if bug is not None and not isinstance(bug, MonitorError) and self._dispatch.first_time(bug):
            log.error(
                'deliver channel=%s delivery=%d bug="%s" (traceback shown once per distinct error)',
                alert.channel,
                alert.delivery_id,
                reason,
                exc_info=bug,
            )
        return reason, type(bug if bug is not None else error).__name__

    def _fail(self, token: str, alert: Alert, error: Exception) -> Outcome:
        """Schedule the retry, or bury the message as a dead letter."""
        reason, kind = self._reason(alert, error)
        attempt = alert.attempts + 1
        schedule = self._policy.backoff
        delivered = error.delivered if isinstance(error, NotifyError) else frozenset()
        done = alert.done_targets | delivered
        if attempt > len(schedule):
            if not self._store.mark_failed(token, alert.delivery_id, reason, None, done):
                return self._lost(alert)
            log.error(
                'deliver channel=%s delivery=%d status=dead attempts=%d error="%s"',
                alert.channel,
                alert.delivery_id,
                attempt,
                reason,
            )
            return Outcome(alert.delivery_id, alert.channel, alert.title, "dead", reason, kind)
        delay = schedule[attempt - 1] * self._rng.uniform(1 - JITTER, 1 + JITTER)
        if not self._store.mark_failed(token, alert.delivery_id, reason, self._clock() + delay, done):
            return self._lost(alert)
        log.warning(
            'deliver channel=%s delivery=%d status=retry attempt=%d retry_in=%s error="%s"',
            alert.channel,
            alert.delivery_id,
            attempt,
            format_duration(delay),
            reason,
        )
        return Outcome(alert.delivery_id, alert.channel, alert.title, "retry", reason, kind)
