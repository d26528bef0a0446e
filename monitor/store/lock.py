"""One daemon per SQLite file: an advisory lock beside the database.

SQLite cannot arbitrate leases between processes the way PostgreSQL's
``FOR UPDATE SKIP LOCKED`` does, and a starting daemon releases the delivery claims
left by a crashed one, which is only safe if nobody else holds them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from monitor.errors import StorageError


class InstanceLocked(StorageError):
    """Another process (``holder``: its pid) holds the SQLite file's lock."""

    def __init__(self, message: str, holder: str) -> None:
        self.holder = holder
        super().__init__(message)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, None for other backends or memory."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database)


@contextmanager
def instance_lock(url: str) -> Iterator[None]:
    """Hold ``<db>.lock`` while running; a second instance fails with a clear message."""
    path = sqlite_path(url)
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StorageError(
            f"store: cannot write beside the database {path} ({e.strerror}); "
            "the daemon needs a writable directory (is the volume read-only?)"
        ) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise InstanceLocked(
                f"store: another monitor (pid {holder}) is already running on {path}; "
                "one instance per SQLite file (use PostgreSQL to run several)",
                holder,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
