"""Running a hypothesis state machine against one real Store (the protocol models in
test_outbox_properties, test_schedule_properties, test_about_queue_properties), and the
row those models share: a row that is claimed with a token and a lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from monitor.store import Store
from tests.delivery import NOW

MACHINE_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class StoreMachine(RuleBasedStateMachine):
    """A state machine whose examples all run on ``store`` (set by ``run_on``); each
    example empties the tables it models in its ``__init__``."""

    store: ClassVar[Store]


def run_on(machine: type[StoreMachine], store: Store) -> None:
    """Run ``machine`` with MACHINE_SETTINGS, every example on ``store``."""
    machine.store = store
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)


@dataclass
class LeasedRow:
    """What a model knows of one claimable row (a delivery, an about-queue row).

    It is claimable when pending, due, and its lease (if any) has run out; the claim
    whose token is on it still holds it, even past the lease, until another claim takes
    the row over."""

    id: int
    state: str = "pending"  # pending, or the protocol's own ends (sent, dead, gave_up, gone)
    due: datetime = NOW  # next_attempt_at, not_before
    token: str | None = None
    until: datetime | None = None
    attempts: int = 0

    def claimable(self, now: datetime) -> bool:
        return self.state == "pending" and self.due <= now and (self.until is None or self.until <= now)

    def held_by(self, token: str) -> bool:
        return self.state == "pending" and self.token == token

    def released(self) -> None:
        self.token, self.until = None, None
