"""Persistence: SQLModel tables behind the Store facade (rows never leave this package)."""

from monitor.store.engine import inspect_schema, upgrade_schema
from monitor.store.lock import InstanceLocked, instance_lock
from monitor.store.migrate import SchemaState
from monitor.store.outbox import Claim
from monitor.store.retention import Pruned
from monitor.store.store import PollResult, Store

__all__ = [
    "Claim",
    "InstanceLocked",
    "PollResult",
    "Pruned",
    "SchemaState",
    "Store",
    "inspect_schema",
    "instance_lock",
    "upgrade_schema",
]
