"""Engine creation: SQLite pragmas (WAL, busy timeout, IMMEDIATE transactions) and schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from monitor.store.migrate import READ_ONLY, SchemaState, ensure_schema, schema_state

BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


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
