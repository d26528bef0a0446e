"""``monitor db upgrade|current|vacuum``: the database's schema revision and its size.

``upgrade`` applies the migrations that ``run`` applies by itself unless
``database_upgrade: manual``; ``current`` only looks; ``vacuum`` prunes with the
configured ``retention`` now, then gives the freed space back to the system.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.commands._common import EXIT_OK, add_config_option
from monitor.config import Settings, format_duration, load_settings
from monitor.log import install_redactor
from monitor.store import SchemaState, Store, inspect_schema, instance_lock, upgrade_schema


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``db`` and its actions to the top-level sub-commands."""
    text = "the database: upgrade its schema, show its revision, prune and vacuum it"
    db = commands.add_parser("db", help=text, description=text)
    actions = db.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    for name, handler, help_text in (
        ("upgrade", _upgrade, "migrate the database schema to this monitor's revision"),
        ("current", _current, "show the database's schema revision and the one this monitor needs"),
        ("vacuum", _vacuum, "delete what `retention` lets go now, then reclaim the space (VACUUM)"),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.set_defaults(handler=handler)
        add_config_option(action)


def _settings(path: Path) -> Settings:
    """The config without channel secrets (nothing is sent); output hides what it has."""
    settings = load_settings(path, require_env=False)
    install_redactor(settings.redactor())
    return settings


def _upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    with instance_lock(settings.database):
        before, after = upgrade_schema(settings.database)
    print(_upgraded(before, after))
    return EXIT_OK


def _upgraded(before: SchemaState, after: SchemaState) -> str:
    if before.up_to_date:
        return f"database is up to date (revision {after.current})"
    if before.current is None:
        return f"created the database schema (revision {after.current})"
    origin = " (first release, before migrations)" if before.pre_migration else ""
    return f"upgraded the database from revision {before.current}{origin} to {after.current}"


def _current(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    print(inspect_schema(settings.database).describe())
    return EXIT_OK


def _vacuum(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    retention = settings.retention
    store = Store.open(settings.database, upgrade=settings.database_upgrade == "auto")
    try:
        pruned = store.prune(datetime.now(UTC), retention.articles, retention.alerts)
        print(
            f"removed {pruned.articles} articles, {pruned.matches} alerts and "
            f"{pruned.deliveries} deliveries (kept: articles {_kept(retention.articles)}, "
            f"alerts {_kept(retention.alerts)})"
        )
        before = store.size()
        store.vacuum()
        after = store.size()
    finally:
        store.close()
    print(f"vacuumed the database: {_size(before)} before, {_size(after)} after")
    return EXIT_OK


def _kept(age: timedelta | None) -> str:
    return "forever" if age is None else format_duration(age)


def _size(count: int) -> str:
    return f"{count / 1024:,.0f} KiB"
