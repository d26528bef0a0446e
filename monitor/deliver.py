"""The delivery step: lease due outbox rows, send each through the notifier, settle it.

Failures are retried on the configured backoff schedule (with jitter so a recovered
server is not hit by every retry at once), then become dead letters that
``monitor status`` shows.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import DeliverySettings, format_duration
from monitor.errors import NotifyError
from monitor.models import Alert
from monitor.notify import Notifier
from monitor.store import Store

log = logging.getLogger(__name__)
JITTER = 0.2


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery pass did."""

    sent: int = 0
    failed: int = 0
    dead: int = 0


class Courier:
    """Moves messages from the outbox to the channels."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        policy: DeliverySettings,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is ours before another worker may take it."""
        return self._policy.timeout * 4

    def deliver(self, *, ids: Sequence[int] | None = None, limit: int = 100) -> DeliveryReport:
        """Send every due delivery (or only ``ids``); returns counts."""
        sent = failed = dead = 0
        alerts = self._store.claim_due(self._clock(), self.lease, ids=ids, limit=limit)
        for alert in alerts:
            try:
                self._notifier.send(alert)
            except NotifyError as e:
                failed += 1
                dead += self._fail(alert, str(e))
                continue
            self._store.mark_sent(alert.delivery_id, self._clock())
            sent += 1
            log.info(
                'deliver channel=%s delivery=%d status=sent feed="%s" rules="%s"',
                alert.channel,
                alert.delivery_id,
                alert.feed,
                ",".join(alert.rules),
            )
        return DeliveryReport(sent=sent, failed=failed, dead=dead)

    def _fail(self, alert: Alert, error: str) -> int:
        """Schedule the retry, or bury the message; returns 1 when it became dead."""
        attempt = alert.attempts + 1
        schedule = self._policy.backoff
        if attempt > len(schedule):
            self._store.mark_failed(alert.delivery_id, error, None)
            log.error(
                'deliver channel=%s delivery=%d status=dead attempts=%d error="%s"',
                alert.channel,
                alert.delivery_id,
                attempt,
                error,
            )
            return 1
        delay = schedule[attempt - 1] * self._rng.uniform(1 - JITTER, 1 + JITTER)
        self._store.mark_failed(alert.delivery_id, error, self._clock() + delay)
        log.warning(
            'deliver channel=%s delivery=%d status=retry attempt=%d retry_in=%s error="%s"',
            alert.channel,
            alert.delivery_id,
            attempt,
            format_duration(delay),
            error,
        )
        return 0
