"""Schema migrations on real SQLite files and the real PostgreSQL.

A database "from the first release" is made by revision 0001 (whose DDL is that
release's ``create_all``), filled with plain SQL, then opened by today's Store.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from monitor.cli import main
from monitor.errors import StorageError
from monitor.identity import digest
from monitor.models import Entry, Match, Snippet
from monitor.store import PollResult, Store, inspect_schema, instance_lock
from monitor.store.migrate import alembic_config, head_revision
from monitor.store.tables import FEEDS, SCHEMA_VERSION

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
HEAD = head_revision()
LEASE = timedelta(minutes=2)
OLD_FEED, QUIET_FEED = "https://old.example/feed.xml", "https://quiet.example/feed.xml"
FEED_COLUMNS = (
    "url, name, active, title, etag, last_modified, created_at, last_poll_at, last_success_at,"
    " last_error, last_error_at, error_count, poll_count, next_poll_at"
)
ARTICLE_COLUMNS = (
    'feed_id, "key", title, link, author, published_at, fetched_at,'
    " summary_html, summary_text, content_html, content_text"
)
MATCH_COLUMNS = "article_id, rule, field, terms, snippet, highlights, created_at"
DELIVERY_COLUMNS = (
    "article_id, channel, rules, state, attempts, next_attempt_at, claimed_until,"
    " last_error, created_at, sent_at"
)
FEED = f"(SELECT id FROM feeds WHERE url = '{OLD_FEED}')"


def _article(key: str) -> str:
    return f"(SELECT id FROM articles WHERE \"key\" = '{key}')"


FIRST_RELEASE_ROWS = (
    f"""INSERT INTO feeds ({FEED_COLUMNS}) VALUES ('{OLD_FEED}', 'Old feed', TRUE, 'Old Feed', '"v1"',
        'Thu, 30 May 2024 12:00:00 GMT', '2024-04-01 08:00:00', '2024-05-30 12:00:00',
        '2024-05-30 12:00:00', NULL, NULL, 0, 42, '2024-05-30 12:10:00')""",
    f"""INSERT INTO feeds ({FEED_COLUMNS}) VALUES ('{QUIET_FEED}', 'Quiet feed', FALSE, NULL, NULL, NULL,
        '2024-04-01 08:00:00', '2024-05-30 11:00:00', NULL, 'fetch: HTTP 500', '2024-05-30 11:00:00',
        3, 3, '2024-05-30 13:00:00')""",
    f"""INSERT INTO articles ({ARTICLE_COLUMNS}) VALUES ({FEED}, 'k-swap', 'Swap agreed',
        'https://old.example/swap', 'A. Writer', '2024-05-29 09:30:00', '2024-05-29 10:00:00',
        '<p>A prisoner exchange.</p>', 'A prisoner exchange.', '', '')""",
    f"""INSERT INTO articles ({ARTICLE_COLUMNS}) VALUES ({FEED}, 'k-strike', 'Strike reported',
        'https://old.example/strike', NULL, NULL, '2024-05-20 07:00:00', '', 'ATACMS used.', '', '')""",
    f"""INSERT INTO articles ({ARTICLE_COLUMNS}) VALUES ({FEED}, 'k-plain', 'Weather', NULL, NULL, NULL,
        '2024-05-30 12:00:00', '', 'Sunny.', '', '')""",
    f"""INSERT INTO matches ({MATCH_COLUMNS}) VALUES ({_article("k-swap")}, 'prisoner exchange', 'summary',
        '["prisoner exchange"]', 'A prisoner exchange.', '[[2, 19]]', '2024-05-29 10:00:00')""",
    f"""INSERT INTO matches ({MATCH_COLUMNS}) VALUES ({_article("k-strike")}, 'ATACMS', 'summary',
        '["ATACMS"]', 'ATACMS used.', '[[0, 6]]', '2024-05-20 07:00:00')""",
    f"""INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({_article("k-swap")}, 'hook',
        '["prisoner exchange"]', 'pending', 1, '2024-05-29 10:05:00', NULL, 'notify: HTTP 500',
        '2024-05-29 10:00:00', NULL)""",
    f"""INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({_article("k-strike")}, 'hook', '["ATACMS"]',
        'sent', 1, '2024-05-20 07:00:00', NULL, NULL, '2024-05-20 07:00:00', '2024-05-20 07:00:05')""",
)
# Columns 0002 adds with a server default, so that existing rows are filled in place.
SERVER_DEFAULTS = {
    ("feeds", "health"),
    ("articles", "page_text"),
    ("deliveries", "batched"),
    ("deliveries", "done_targets"),
    ("deliveries", "kind"),
}


def _first_release(url: str, *, pre_migration: bool = False, rows: bool = True) -> None:
    """A database as the first release left it: revision 0001 and some plain-SQL rows.

    ``pre_migration`` drops ``alembic_version``, as the first release (which made its
    tables with ``create_all``) never had one; ``schema_version`` stays.
    """
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        for sql in FIRST_RELEASE_ROWS if rows else ():
            conn.execute(text(sql))
        if pre_migration:
            conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()


def _query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql)))
    engine.dispose()
    return rows


def _drift(url: str, *, server_defaults: bool = False) -> list[Any]:
    """Alembic's autogenerate diff between the database and the models: [] when equal."""
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": server_defaults}
        )
        diff = compare_metadata(context, FEEDS.metadata)
    engine.dispose()
    return list(diff)


@pytest.fixture
def opened() -> Iterator[list[Store]]:
    """Stores a test opened; closed at the end."""
    stores: list[Store] = []
    yield stores
    for store in stores:
        store.close()


def test_the_head_revision_is_the_models(any_db_url: str, opened: list[Store]) -> None:
    opened.append(Store.open(any_db_url))
    assert _drift(any_db_url) == []
    diff = _drift(any_db_url, server_defaults=True)
    changes = [c for d in diff for c in (d if isinstance(d, list) else [d])]  # column changes come grouped
    assert {c[0] for c in changes} == {"modify_default"}
    defaults = {(c[2], c[3]) for c in changes}
    assert defaults == SERVER_DEFAULTS
    assert _query(any_db_url, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    assert _query(any_db_url, "SELECT id, version FROM schema_version") == [(1, SCHEMA_VERSION)]


def test_a_first_release_database_upgrades_with_its_rows(any_db_url: str, opened: list[Store]) -> None:
    _first_release(any_db_url)
    assert inspect_schema(any_db_url).current == "0001"

    store = Store.open(any_db_url)
    opened.append(store)

    assert _drift(any_db_url) == []
    assert inspect_schema(any_db_url).up_to_date
    assert _query(any_db_url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    old, quiet = sorted(store.feed_statuses(), key=lambda s: s.url)
    assert (old.name, old.active, old.articles, old.alerts, old.health) == ("Old feed", True, 3, 2, "ok")
    assert (quiet.name, quiet.active, quiet.error_count, quiet.last_error) == (
        "Quiet feed",
        False,
        3,
        "fetch: HTTP 500",
    )
    assert old.last_new_at == datetime(2024, 5, 30, 12, 0, tzinfo=UTC)  # its newest article
    assert quiet.last_new_at is None and old.disabled is None and old.fetch_url is None
    [feed] = store.feeds()
    assert (feed.etag, feed.first_poll) == ('"v1"', False)
    assert feed.last_modified == "Thu, 30 May 2024 12:00:00 GMT"
    pages = _query(any_db_url, "SELECT page_text, page_error FROM articles")
    assert pages == [("", None)] * 3
    deliveries = _query(
        any_db_url,
        'SELECT d.state, d.batched, d.done_targets, d.notice_title, d.message_key, a."key"'
        ' FROM deliveries d JOIN articles a ON a.id = d.article_id ORDER BY a."key"',
    )
    assert [tuple(d[:4]) for d in deliveries] == [("sent", False, "[]", None), ("pending", False, "[]", None)]
    assert [d.message_key for d in deliveries] == [digest(str(feed.id), d.key, "hook") for d in deliveries]
    _store_works(store, feed.id)


def _store_works(store: Store, feed_id: int) -> None:
    """The upgraded database takes a poll, a notice, and gives out its old delivery."""
    claim = store.claim_due(NOW, LEASE)
    [alert] = claim.alerts
    assert (alert.title, alert.rules, alert.feed) == ("Swap agreed", ("prisoner exchange",), "Old feed")
    assert alert.snippet.highlights == ((2, 19),)
    assert alert.message_key == digest(str(feed_id), "k-swap", "hook")
    assert store.mark_sent(claim.token, [alert.delivery_id], NOW) == {alert.delivery_id}

    entry = Entry("k-new", "Another swap", "https://old.example/new", None, NOW, "", "prisoner swap", "", "")
    match = Match("prisoner exchange", "summary", ("prisoner swap",), Snippet("prisoner swap", ((0, 13),)))
    routes = {"prisoner exchange": ["hook"]}
    saved = store.save_poll(
        feed_id, PollResult('"v2"', None, "Old Feed"), [entry], {"k-new": [match]}, routes, NOW, NOW
    )
    assert (saved.new, saved.matched, saved.queued) == (1, 1, 1)
    assert store.known_keys(feed_id, ["k-swap", "k-new", "k-other"]) == {"k-swap", "k-new"}
    store.set_health(feed_id, "silent", ("hook", "Feed is silent", "No news for a day."), NOW)
    claimed = store.claim_due(NOW, LEASE).alerts
    assert sorted(a.title for a in claimed) == ["Another swap", "Feed is silent"]
    [status] = [s for s in store.feed_statuses() if s.active]
    assert (status.articles, status.alerts, status.health) == (4, 3, "silent")


def test_a_database_made_before_migrations_is_stamped_then_upgraded(
    any_db_url: str, opened: list[Store]
) -> None:
    _first_release(any_db_url, pre_migration=True)
    state = inspect_schema(any_db_url)
    assert (state.current, state.pre_migration) == ("0001", True)
    assert "first release" in state.describe()

    store = Store.open(any_db_url)
    opened.append(store)

    assert inspect_schema(any_db_url).up_to_date
    assert _drift(any_db_url) == []
    assert _query(any_db_url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    assert sorted(s.articles for s in store.feed_statuses()) == [0, 3]
    _store_works(store, next(f.id for f in store.feeds()))


def test_manual_upgrade_refuses_to_start_until_db_upgrade(
    any_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _first_release(any_db_url)
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {any_db_url}\ndatabase_upgrade: manual\n", encoding="utf-8")

    assert main(["status", "-c", str(config)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"monitor: store: database is at revision 0001, this monitor needs {head_revision()}; "
        "run `monitor db upgrade`"
    )
    assert main(["db", "current", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"0001 (head is {HEAD}; run `monitor db upgrade`)"

    assert main(["db", "upgrade", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"upgraded the database from revision 0001 to {HEAD}"
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"database is up to date (revision {HEAD})"
    assert main(["db", "current", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"{HEAD} (head)"
    assert main(["status", "-c", str(config)]) == 0
    assert "Old feed" in capsys.readouterr().out


def test_db_upgrade_names_a_database_from_before_migrations_and_creates_a_new_one(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _first_release(db_url, pre_migration=True)
    old = tmp_path / "old.yaml"
    old.write_text(f"database: {db_url}\n", encoding="utf-8")
    assert main(["db", "upgrade", "-c", str(old)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"upgraded the database from revision 0001 (first release, before migrations) to {HEAD}"
    )
    new = tmp_path / "new.yaml"
    new.write_text("database: sqlite:///fresh.db\n", encoding="utf-8")
    assert main(["db", "current", "-c", str(new)]) == 0
    assert capsys.readouterr().out.strip() == f"none (empty database; head is {HEAD})"
    assert main(["db", "upgrade", "-c", str(new)]) == 0
    assert capsys.readouterr().out.strip() == f"created the database schema (revision {HEAD})"


def test_db_upgrade_waits_for_no_daemon_on_a_sqlite_file(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _first_release(db_url)
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {db_url}\n", encoding="utf-8")
    with instance_lock(db_url):
        assert main(["db", "upgrade", "-c", str(config)]) == 1
    assert "another monitor" in capsys.readouterr().err
    assert inspect_schema(db_url).current == "0001"


def test_manual_upgrade_still_creates_a_new_database(db_url: str, opened: list[Store]) -> None:
    opened.append(Store.open(db_url, upgrade=False))
    assert inspect_schema(db_url).up_to_date


def test_a_database_from_a_newer_monitor_is_refused(any_db_url: str, opened: list[Store]) -> None:
    Store.open(any_db_url).close()
    engine = create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for upgrade in (True, False):
        newer = rf"revision 9999, newer than this monitor \({HEAD}\); upgrade"
        with pytest.raises(StorageError, match=newer):
            Store.open(any_db_url, upgrade=upgrade)
    assert "made by a newer monitor" in inspect_schema(any_db_url).describe()


def test_tables_without_a_schema_version_are_refused(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE feeds (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StorageError, match=r"tables named like monitor's \(feeds\) but no schema version"):
        Store.open(db_url)


ORPHAN_DELIVERY = (
    f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES (999, 'hook', '[]', 'sent', 1,"
    " NULL, NULL, NULL, NULL, NULL)"
)
ORPHAN_MATCH = f"INSERT INTO matches ({MATCH_COLUMNS}) VALUES (999, 'r', 'title', '[]', '', '[]', NULL)"


@pytest.mark.parametrize(
    ("orphan", "reason"),
    [
        (ORPHAN_DELIVERY, f"upgrading the database from revision 0001 to {HEAD} failed, nothing was changed"),
        (ORPHAN_MATCH, "migration would break foreign keys in matches; nothing was changed"),
    ],
    ids=["step-fails", "foreign-key-check-fails"],
)
def test_a_failed_migration_leaves_the_database_as_it_was(db_url: str, orphan: str, reason: str) -> None:
    _first_release(db_url)
    engine = create_engine(db_url)  # no foreign keys here: plant a row that points nowhere
    with engine.begin() as conn:
        conn.execute(text(orphan))
    engine.dispose()
    with pytest.raises(StorageError) as failed:
        Store.open(db_url)
    assert str(failed.value).startswith(f"store: {reason}")
    assert inspect_schema(db_url).current == "0001"
    columns = {c["name"] for c in inspect(create_engine(db_url)).get_columns("deliveries")}
    assert "message_key" not in columns
    assert _query(db_url, "SELECT count(*) FROM matches") == [(3,) if orphan == ORPHAN_MATCH else (2,)]


def test_downgrade_to_the_first_release_and_back(any_db_url: str, opened: list[Store]) -> None:
    _first_release(any_db_url)
    store = Store.open(any_db_url)
    feed_id = next(f.id for f in store.feeds())
    store.set_health(feed_id, "failing", ("hook", "Feed is failing", "HTTP 500 for 6 hours."), NOW)
    store.close()

    engine = create_engine(any_db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    engine.dispose()
    assert _query(any_db_url, "SELECT version FROM schema_version") == [(1,)]
    assert _query(any_db_url, "SELECT count(*) FROM deliveries") == [(2,)]  # the notice had to go
    columns = {c["name"] for c in inspect(create_engine(any_db_url)).get_columns("feeds")}
    assert "health" not in columns and "fetch_url" not in columns

    store = Store.open(any_db_url)
    opened.append(store)
    assert _drift(any_db_url) == []
    assert sum(s.alerts for s in store.feed_statuses()) == 2


def test_downgrade_to_nothing_then_start_afresh(any_db_url: str, opened: list[Store]) -> None:
    Store.open(any_db_url).close()
    engine = create_engine(any_db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    engine.dispose()
    assert inspect_schema(any_db_url).current is None
    opened.append(Store.open(any_db_url))
    assert inspect_schema(any_db_url).up_to_date
    assert _drift(any_db_url) == []
