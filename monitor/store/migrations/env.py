"""Alembic's environment for the store: migrations run on a Connection we hand over.

There is no ``alembic.ini``. ``monitor.store.migrate`` builds the Config in code and
puts an open Connection, already inside its transaction, in
``config.attributes["connection"]``; the migration commits or rolls back with it.

A new revision is written the Alembic way, from a database at head::

    from alembic import command
    from monitor.store.engine import make_engine
    from monitor.store.migrate import alembic_config

    with make_engine("sqlite:///dev.db").begin() as conn:
        command.revision(alembic_config(conn), "what changed", autogenerate=True, rev_id="0003")

then reviewed by hand (batch mode is on, so SQLite ALTERs work) and pinned by
``tests/test_migrations.py``, which fails while the models and the head disagree.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from monitor.store.tables import FEEDS


def run_migrations() -> None:
    """Run the requested command (upgrade, stamp, revision) on the given connection."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("monitor's migrations run on a Connection; use `monitor db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=FEEDS.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
