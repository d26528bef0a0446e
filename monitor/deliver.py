"""The delivery step: lease due outbox rows, send them, settle each one.

Channels are sent in parallel, so a slow or dead mail server never delays Slack.
Within a channel: individual alerts first (up to ``max_per_hour``; the rest are held
and later folded into one summary), then batched alerts (a digest, or a summary) as
one message. Failures retry on the configured backoff schedule with jitter (so a
recovered server is not hit by every retry at once), then become dead letters.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.config import ChannelSpec, DeliverySettings, format_duration
from monitor.errors import NotifyError
from monitor.models import Alert
from monitor.notify import Notifier
from monitor.store import Store

log = logging.getLogger(__name__)
JITTER = 0.2
MAX_CHANNEL_THREADS = 8


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one delivery in this pass."""

    delivery_id: int
    channel: str
    title: str
    status: str  # sent | retry | dead | held
    error: str | None = None


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
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._policy = policy
        self._clock = clock
        self._channels = channels or {}
        self._rng = rng or random.Random()
        self._observe = observe

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is ours before another worker may take it."""
        return self._policy.timeout * 4

    def deliver(self, *, ids: Sequence[int] | None = None, limit: int = 1000) -> DeliveryReport:
        """Send every due delivery (or only ``ids``), each channel in its own thread."""
        alerts = self._store.claim_due(self._clock(), self.lease, ids=ids, limit=limit)
        by_channel: dict[str, list[Alert]] = {}
        for alert in alerts:
            by_channel.setdefault(alert.channel, []).append(alert)
        if not by_channel:
            return DeliveryReport()
        workers = min(len(by_channel), MAX_CHANNEL_THREADS)
        with ThreadPoolExecutor(workers, thread_name_prefix="deliver") as pool:
            results = list(pool.map(self._deliver_channel, by_channel.items()))
        report = DeliveryReport(outcomes=tuple(o for batch in results for o in batch))
        if self._observe is not None:
            for outcome in report.outcomes:
                self._observe(outcome)
        return report

    def _deliver_channel(self, item: tuple[str, list[Alert]]) -> list[Outcome]:
        channel, alerts = item
        singles = [a for a in alerts if not a.batched]
        batched = [a for a in alerts if a.batched]
        outcomes = self._hold_over_limit(channel, singles)
        held = {o.delivery_id for o in outcomes}
        outcomes += [self._send(a) for a in singles if a.delivery_id not in held]
        if batched:
            outcomes += self._send_batch(channel, batched)
        return outcomes

    def _hold_over_limit(self, channel: str, singles: list[Alert]) -> list[Outcome]:
        """Defer what exceeds ``max_per_hour`` to the next hour, as one summary."""
        spec = self._channels.get(channel)
        if spec is None or spec.max_per_hour is None or not singles:
            return []
        now = self._clock()
        hour = now.replace(minute=0, second=0, microsecond=0)
        room = max(0, spec.max_per_hour - self._store.count_sent(channel, hour))
        over = singles[room:]
        if over:
            self._store.defer([a.delivery_id for a in over], hour + timedelta(hours=1))
            log.info("deliver channel=%s held=%d limit=%d/h", channel, len(over), spec.max_per_hour)
        return [Outcome(a.delivery_id, channel, a.title, "held") for a in over]

    def _send(self, alert: Alert) -> Outcome:
        try:
            self._notifier.send(alert)
        except NotifyError as e:
            return self._fail(alert, e)
        self._store.mark_sent(alert.delivery_id, self._clock())
        log.info(
            'deliver channel=%s delivery=%d status=sent feed="%s" rules="%s"',
            alert.channel,
            alert.delivery_id,
            alert.feed,
            ",".join(alert.rules),
        )
        return Outcome(alert.delivery_id, alert.channel, alert.title, "sent")

    def _send_batch(self, channel: str, alerts: list[Alert]) -> list[Outcome]:
        spec = self._channels.get(channel)
        reason = "digest" if spec is not None and spec.digest else "summary"
        try:
            self._notifier.send_batch(channel, alerts, reason)
        except NotifyError as e:
            return [self._fail(a, e) for a in alerts]
        now = self._clock()
        for alert in alerts:
            self._store.mark_sent(alert.delivery_id, now)
        log.info("deliver channel=%s status=sent %s=%d", channel, reason, len(alerts))
        return [Outcome(a.delivery_id, channel, a.title, "sent") for a in alerts]

    def _fail(self, alert: Alert, error: NotifyError) -> Outcome:
        """Schedule the retry, or bury the message as a dead letter."""
        attempt = alert.attempts + 1
        schedule = self._policy.backoff
        done = alert.done_targets | error.delivered
        if attempt > len(schedule):
            self._store.mark_failed(alert.delivery_id, str(error), None, done)
            log.error(
                'deliver channel=%s delivery=%d status=dead attempts=%d error="%s"',
                alert.channel,
                alert.delivery_id,
                attempt,
                error,
            )
            return Outcome(alert.delivery_id, alert.channel, alert.title, "dead", str(error))
        delay = schedule[attempt - 1] * self._rng.uniform(1 - JITTER, 1 + JITTER)
        self._store.mark_failed(alert.delivery_id, str(error), self._clock() + delay, done)
        log.warning(
            'deliver channel=%s delivery=%d status=retry attempt=%d retry_in=%s error="%s"',
            alert.channel,
            alert.delivery_id,
            attempt,
            format_duration(delay),
            error,
        )
        return Outcome(alert.delivery_id, alert.channel, alert.title, "retry", str(error))
