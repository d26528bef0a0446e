"""Engine creation: SQLite pragmas (WAL, busy timeout, IMMEDIATE transactions) and schema."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError

from monitor.errors import StorageError
from monitor.store.migrate import READ_ONLY, SchemaState, ensure_schema, schema_state

STORE_REFUSALS = (OperationalError, InterfaceError, InternalError)
"""What the database raises when it cannot do the work, as opposed to a bug of ours:
locked, full, gone (OperationalError), a closed connection (InterfaceError), a server
that refuses writes, such as a PostgreSQL standby after a failover
(``ReadOnlySqlTransaction`` is an InternalError)."""


BUSY_TIMEOUT_MS = 10_000
WRITER_WAIT_S = 60.0  # a writer's wait for this process's other writers (SQLite), at most


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE.

    PostgreSQL transactions are READ COMMITTED whatever the server, database or role
    default: the story step's advisory lock serialises two daemons only if the one that
    waited then sees what the other committed, and a REPEATABLE READ snapshot, taken at
    the transaction's first statement before the lock, would not (two stories, two
    alerts for one event)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _sqlite_pragmas(engine)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, isolation_level="READ COMMITTED"
    )


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so busy_timeout applies and a
        # read-then-write transaction can never fail with "database is locked".
        # Pure reads (Store.reading) begin DEFERRED: in WAL they never wait for writers.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class WriterGate:
    """One SQLite writer at a time in this process, taking turns on a lock.

    SQLite lets one connection write at a time; without this, every other poll thread's
    BEGIN IMMEDIATE sleeps in SQLite's busy handler (1 ms, then up to 100 ms at a time)
    and retries, so the lock sits free between sleeps and a thread that keeps losing the
    race fails with "database is locked" after BUSY_TIMEOUT_MS on a loaded machine. Here
    the threads queue on a lock that wakes the next one at release; the busy timeout is
    left to other processes (a second daemon, a command). Reentrant, so a nested
    transaction fails on SQLite's timeout as before instead of waiting here forever.
    """

    def __init__(self, wait_s: float = WRITER_WAIT_S) -> None:
        self.wait_s = wait_s
        self._lock = threading.RLock()

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self.wait_s):
            waited = f"waited {self.wait_s:g}s for this process's other writers"
            raise StorageError(f"store: database is locked: {waited}")

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


def writer_gate(engine: Engine) -> AbstractContextManager[None]:
    """What a write transaction on ``engine`` holds first: a WriterGate on SQLite;
    nothing on PostgreSQL, whose writers lock rows, not the database."""
    return WriterGate() if engine.dialect.name == "sqlite" else nullcontext()


def create_schema(engine: Engine, *, upgrade: bool = True) -> SchemaState:
    """Create or migrate the schema to head (see ``migrate``); ``upgrade=False`` refuses old ones."""
    return ensure_schema(engine, upgrade=upgrade)


def inspect_schema(url: str) -> SchemaState:
    """Where the database at ``url`` stands, changing nothing."""
    engine = make_engine(url)
    try:
        return schema_state(engine)
    finally:
        engine.dispose()


def upgrade_schema(url: str) -> tuple[SchemaState, SchemaState]:
    """Bring the database at ``url`` to head: (before, after)."""
    engine = make_engine(url)
    try:
        before = schema_state(engine)
        return before, ensure_schema(engine, upgrade=True)
    finally:
        engine.dispose()
