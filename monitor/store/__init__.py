"""Persistence: SQLModel tables behind the Store facade (rows never leave this package)."""

from monitor.store.lock import instance_lock
from monitor.store.store import PollResult, Store

__all__ = ["PollResult", "Store", "instance_lock"]
