"""``monitor deliveries retry`` beside a running daemon never sends what the daemon sends:
on SQLite it leaves the sending to the daemon (whose lock it respects), and on PostgreSQL
it claims like the daemon does."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.store import InstanceLocked, Store, instance_lock
from tests.conftest import WAIT, Clock
from tests.delivery import GateNotifier, StallSink, courier, in_thread, queue, rows

WriteConfig = Callable[[str], Path]


@pytest.fixture
def sink() -> Iterator[StallSink]:
    sink = StallSink()
    yield sink
    sink.close()


def _config(write_config: WriteConfig, database: str, sink: StallSink) -> Path:
    return write_config(
        f"""
database: {database}
channels: {{hook: "{sink.url}"}}
"""
    )


def _queue(url: str, titles: list[str]) -> list[int]:
    store = Store.open(url)
    try:
        return queue(store, titles, ["hook"], when=datetime.now(UTC))
    finally:
        store.close()


def test_beside_a_sqlite_daemon_retry_makes_messages_due_and_leaves_them_to_it(
    db_url: str, write_config: WriteConfig, sink: StallSink, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(write_config, db_url, sink)
    ids = _queue(db_url, ["one", "two"])
    with instance_lock(db_url):  # what a running `monitor run` holds
        assert main(["deliveries", "retry", "-c", str(path)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"2 message(s) made due now; monitor (pid {os.getpid()}) is running and sends them"
    )
    assert sink.posts.items == []
    pending = rows(db_url, "SELECT id FROM deliveries WHERE state = 'pending' AND claim_token IS NULL")
    assert sorted(r[0] for r in pending) == ids


def test_while_retry_sends_on_sqlite_no_daemon_can_start(
    db_url: str, write_config: WriteConfig, sink: StallSink, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(write_config, db_url, sink)
    _queue(db_url, ["slow one"])
    codes: list[int] = []
    retry = threading.Thread(target=lambda: codes.append(main(["deliveries", "retry", "-c", str(path)])))
    retry.start()
    try:
        assert sink.stalled.wait(WAIT)
        with pytest.raises(InstanceLocked, match="another monitor"), instance_lock(db_url):
            pass  # a daemon starting now would be refused: it drops every claim when it starts
    finally:
        sink.release.set()
        retry.join(WAIT)
    assert codes == [0]
    assert capsys.readouterr().out.splitlines() == ["sent  hook  slow one", "1 sent, 0 failed"]


@pytest.mark.postgres
def test_beside_a_postgres_daemon_retry_never_sends_what_the_daemon_is_sending(
    pg_url: str,
    write_config: WriteConfig,
    sink: StallSink,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _config(write_config, pg_url, sink)
    daemons = ["in flight", "b", "c", "d"]  # what the daemon's claim holds (as many as fit its lease)
    _queue(pg_url, [*daemons, "fifth", "sixth"])
    clock.now = datetime.now(UTC)
    store = Store.open(pg_url)
    gate = GateNotifier(hold=["in flight"])
    try:
        daemon = courier(store, gate, clock)
        assert daemon.claim_size == len(daemons)
        thread, reports = in_thread(daemon.deliver)  # the daemon's pass
        assert gate.entered.wait(WAIT)
        assert main(["deliveries", "retry", "-c", str(path)]) == 0
        out = capsys.readouterr().out.splitlines()
        gate.release.set()
        thread.join(WAIT)
    finally:
        gate.release.set()
        store.close()
    assert sorted(out) == ["2 sent, 0 failed", "sent  hook  fifth", "sent  hook  sixth"]
    assert sink.titles == ["[ATACMS] fifth", "[ATACMS] sixth"]
    assert [a.title for a in gate.sent] == daemons
    assert [o.status for o in reports[0].outcomes] == ["sent"] * 4
