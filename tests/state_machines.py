"""Running a hypothesis state machine against one real Store (the protocol models in
test_outbox_properties, test_schedule_properties, test_about_queue_properties)."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from monitor.store import Store

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
