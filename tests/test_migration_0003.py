"""Revision 0003 (owned claims, hourly quota) on real SQLite files and the real PostgreSQL:
a 0002 database upgrades with its rows, counts the hour in progress, and goes back down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import create_engine, inspect, text

from monitor.store import Store, inspect_schema
from monitor.store.migrate import alembic_config
from tests.test_migrations import _drift

LEASE = timedelta(minutes=2)
COLUMNS = ", ".join(
    [
        *("channel", "notice_title", "message_key", "rules", "batched", "state", "attempts"),
        *("next_attempt_at", "claimed_until", "sent_at"),
    ]
)


def _at_0002(url: str, now: datetime) -> None:
    """A database as monitor with revision 0002 left it, with a live claim and sent messages."""
    naive = now.replace(tzinfo=None)
    rows = [
        ("pager", "sent this hour", False, "sent", naive, None, naive),
        ("pager", "summary this hour", True, "sent", naive, None, naive),
        ("pager", "sent before", False, "sent", naive, None, naive - timedelta(hours=2)),
        ("hook", "sent this hour", False, "sent", naive, None, naive),
        ("hook", "being sent", False, "pending", naive, naive + timedelta(hours=1), None),
    ]
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
        for i, (channel, title, batched, state, due, claimed, sent) in enumerate(rows):
            conn.execute(
                text(
                    f"INSERT INTO deliveries ({COLUMNS}) VALUES (:channel, :title, :key, '[]', :batched,"
                    " :state, 1, :due, :claimed, :sent)"
                ),
                {
                    "channel": channel,
                    "title": title,
                    "key": f"k{i}",
                    "batched": batched,
                    "state": state,
                    "due": due,
                    "claimed": claimed,
                    "sent": sent,
                },
            )
    engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_0002_database_upgrades_counting_the_hour_in_progress(any_db_url: str) -> None:
    now = datetime.now(UTC)
    _at_0002(any_db_url, now)
    assert inspect_schema(any_db_url).current == "0002"
    store = Store.open(any_db_url)
    try:
        assert _drift(any_db_url) == []
        assert store.quota_used("pager", now) == 1, "sent individually this hour, not the summary"
        assert store.quota_used("hook", now) == 1
        assert store.claim_due(now, LEASE).alerts == (), "the old daemon's claim is honoured"
        claim = store.claim_due(now + timedelta(hours=1, seconds=1), LEASE)
        assert [a.title for a in claim.alerts] == ["being sent"]
        [delivery] = claim.ids
        assert store.mark_sent(claim.token, [delivery], now) == {delivery}
    finally:
        store.close()


def test_0003_goes_down_to_0002_and_up_again(any_db_url: str) -> None:
    now = datetime.now(UTC)
    _at_0002(any_db_url, now)
    Store.open(any_db_url).close()
    assert "claim_token" in _columns(any_db_url, "deliveries")

    engine = create_engine(any_db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
        assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 5
    engine.dispose()
    assert "claim_token" not in _columns(any_db_url, "deliveries")
    assert "delivery_quota" not in _tables(any_db_url)

    store = Store.open(any_db_url)
    try:
        assert inspect_schema(any_db_url).up_to_date and _drift(any_db_url) == []
        assert store.quota_used("pager", now) == 1
    finally:
        store.close()
