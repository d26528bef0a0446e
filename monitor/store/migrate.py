"""Schema migrations: Alembic driven from code, on the store's own engine.

The revisions live in ``migrations/versions`` (shipped with the package; no
``alembic.ini``). Opening a database brings it to the head revision:

- an empty database is upgraded from nothing;
- a database made by the first release (``SQLModel.metadata.create_all``, before
  migrations existed) has ``schema_version`` but no ``alembic_version``: it is
  stamped with revision 0001, which is exactly that schema, and upgraded;
- an older revision is upgraded when allowed (``database_upgrade: auto``), else the
  store refuses to open with the command that fixes it;
- a revision this code does not know comes from a newer monitor: refused.

Everything happens in one transaction, so a failed migration leaves the database
as it was. On PostgreSQL an advisory lock makes daemons that start together
migrate one after the other; on SQLite ``BEGIN IMMEDIATE`` does the same, and
foreign keys are off while tables are rebuilt (checked before the commit).

``schema_version`` stays, as a fence: each revision that older releases cannot
work with raises it, and the first release refuses to open a database whose
version is above its own (1).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StorageError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
FIRST_RELEASE = "0001"
"""The revision whose schema the first release created without Alembic."""
_TABLES = frozenset({"schema_version", "feeds", "articles", "matches", "deliveries"})
_CANNOT_WRITE = ("readonly database", "unable to open database file", "read-only file system")
READ_ONLY = "monitor_read_only"
"""Execution option: this connection only reads (SQLite begins DEFERRED, not IMMEDIATE)."""
_PG_LOCK = 0x6D6F6E69746F72  # "monitor": one migrator at a time per PostgreSQL database


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands: its revision and the one this code needs."""

    current: str | None  # None: no tables yet
    head: str
    pre_migration: bool = False  # made by the first release; its schema is FIRST_RELEASE

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def newer(self) -> bool:
        """A revision this code does not know: a newer monitor migrated it."""
        return self.current is not None and self.current not in _revisions()

    def describe(self) -> str:
        """For people: ``0002 (head)``, ``0001 (head is 0002)``, ``none (empty database)``."""
        if self.current is None:
            return f"none (empty database; head is {self.head})"
        shown = self.current + (" (first release, before migrations)" if self.pre_migration else "")
        if self.up_to_date:
            return f"{shown} (head)"
        if self.newer:
            return f"{shown} (unknown to this monitor, whose head is {self.head}: made by a newer monitor)"
        return f"{shown} (head is {self.head}; run `monitor db upgrade`)"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's Config without a file; ``connection`` is what env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@cache
def _revisions() -> frozenset[str]:
    return frozenset(s.revision for s in _script().walk_revisions())


def head_revision() -> str:
    """The revision this code's tables correspond to."""
    head = _script().get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def schema_state(engine: Engine) -> SchemaState:
    """The database's revision, without changing anything (a read that waits for no writer)."""
    with _guarded(), engine.connect().execution_options(**{READ_ONLY: True}) as conn, conn.begin():
        return _state(conn)


def ensure_schema(engine: Engine, *, upgrade: bool) -> SchemaState:
    """Bring the database to head (or refuse, see the module docstring); the state after.

    A database already at head is only read: a command that opens it while a daemon
    writes does not wait for the write lock.
    """
    state = schema_state(engine)
    if state.up_to_date:
        return state
    with _guarded(), _migrating(engine) as conn:
        state = _state(conn)  # again, now that no other migrator can change it
        if state.up_to_date:
            return state
        if state.newer:
            raise StorageError(
                f"store: database is at revision {state.current}, newer than this monitor "
                f"({state.head}); upgrade monitor"
            )
        if not upgrade and state.current is not None:
            raise StorageError(
                f"store: database is at revision {state.current}, this monitor needs {state.head}; "
                "run `monitor db upgrade`"
            )
        _upgrade(conn, state)
    if state.current is None:
        log.debug("store schema=created revision=%s", state.head)
    else:
        log.info("store schema=upgraded from=%s to=%s", state.current, state.head)
    return SchemaState(state.head, state.head)


def _upgrade(conn: Connection, state: SchemaState) -> None:
    """Stamp a pre-migration database, run the revisions up to head, check the result."""
    config = alembic_config(conn)
    try:
        if state.pre_migration:
            command.stamp(config, FIRST_RELEASE)
        command.upgrade(config, "head")
    except SQLAlchemyError as e:
        raise StorageError(
            f"store: upgrading the database from revision {state.current or 'none'} to {state.head} "
            f"failed, nothing was changed: {_reason(e)}"
        ) from e
    if conn.dialect.name == "sqlite":  # tables were rebuilt with foreign keys off
        _check_foreign_keys(conn)


def _state(conn: Connection) -> SchemaState:
    tables = set(inspect(conn).get_table_names())
    head = head_revision()
    if "alembic_version" in tables:
        return SchemaState(MigrationContext.configure(conn).get_current_revision(), head)
    if "schema_version" in tables:
        return SchemaState(FIRST_RELEASE, head, pre_migration=True)
    if tables & _TABLES:
        found = ", ".join(sorted(tables & _TABLES))
        raise StorageError(
            f"store: the database has tables named like monitor's ({found}) but no schema version; "
            "use an empty database"
        )
    return SchemaState(None, head)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One transaction that no other migrator shares; SQLite foreign keys off inside.

    (SQLite would otherwise empty a referenced table that batch mode drops and rebuilds.)
    """
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        raw: Any = conn.connection.driver_connection
        if sqlite:  # a no-op inside a transaction, so before BEGIN
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
                yield conn
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = ", ".join(sorted({str(row[0]) for row in broken}))
        raise StorageError(f"store: migration would break foreign keys in {tables}; nothing was changed")


@contextmanager
def _guarded() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as e:
        reason = _reason(e)
        if any(sign in reason for sign in _CANNOT_WRITE):
            reason += " (SQLite writes beside the database file: is its directory or volume read-only?)"
        raise StorageError(f"store: cannot open database: {reason}") from e
    except CommandError as e:
        raise StorageError(f"store: migration failed: {e}") from e


def _reason(e: SQLAlchemyError) -> str:
    return str(getattr(e, "orig", None) or e).splitlines()[0]
