"""Shutdown with a send in flight: the daemon starts no new send, waits for the one in flight
up to ``shutdown_grace``, then leaves it; an abandoned send's claim expires by its deadline
(or, on SQLite, at the next start) and that one message goes out again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.app import App
from monitor.scheduler import Daemon as InProcessDaemon
from monitor.store import Store
from tests.conftest import WAIT, Clock, Daemon, SettingsFactory
from tests.delivery import GateNotifier, StallSink, queue, rows


@pytest.fixture
def gated(settings_factory: SettingsFactory, clock: Clock) -> Iterator[tuple[App, GateNotifier]]:
    gate = GateNotifier(hold=["first"])
    with App.from_settings(settings_factory(), clock=clock, notifier=gate, strict=True) as app:
        queue(app.store, ["first", "second"], ["hook"])
        yield app, gate
        gate.release.set()


def _claimed(app: App) -> list[str]:
    url = app.store.engine.url.render_as_string(hide_password=False)
    sql = (
        "SELECT a.title FROM deliveries d JOIN articles a ON a.id = d.article_id"
        " WHERE d.claim_token IS NOT NULL"
    )
    return [r[0] for r in rows(url, sql)]


def test_a_send_longer_than_the_grace_is_abandoned_with_its_claim(gated: tuple[App, GateNotifier]) -> None:
    app, gate = gated
    daemon = InProcessDaemon(app)
    job = threading.Thread(target=daemon.deliver_due)
    job.start()
    assert gate.entered.wait(WAIT)
    assert daemon.close(grace=0.2) == 1
    assert _claimed(app) == ["first", "second"], "the abandoned claim stays until its deadline"
    gate.release.set()
    job.join(WAIT)
    [status] = app.store.channel_statuses()
    assert (status.sent, status.pending) == (1, 1), "the send finished late and settled; no new one began"
    assert _claimed(app) == [], "what it had not started was given back"


def test_a_send_that_ends_within_the_grace_is_settled_and_no_new_one_starts(
    gated: tuple[App, GateNotifier],
) -> None:
    app, gate = gated
    daemon = InProcessDaemon(app)
    job = threading.Thread(target=daemon.deliver_due)
    job.start()
    assert gate.entered.wait(WAIT)
    abandoned: list[int] = []
    closing = threading.Thread(target=lambda: abandoned.append(daemon.close(grace=WAIT)))
    closing.start()
    assert app.dispatch.closing.wait(WAIT)
    gate.release.set()
    closing.join(WAIT)
    job.join(WAIT)
    assert abandoned == [0]
    assert [a.title for a in gate.sent] == ["first"]
    assert _claimed(app) == []
    daemon.deliver_due()  # a tick after close sends nothing
    assert [a.title for a in gate.sent] == ["first"]


@pytest.mark.slow
def test_sigterm_during_a_stalled_send_exits_within_the_grace_and_the_message_goes_out_later(
    db_url: str, write_config: Callable[[str], Path], daemon_factory: Callable[[Path], Daemon]
) -> None:
    sink = StallSink(stall_on="first")
    try:
        store = Store.open(db_url)
        queue(store, ["first", "second"], ["hook"], when=datetime.now(UTC))
        store.close()
        path = write_config(
            f"""
database: {db_url}
shutdown_grace: 1s
channels: {{hook: "{sink.url}"}}
"""
        )
        daemon = daemon_factory(path)
        assert sink.stalled.wait(WAIT)
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 8, "exited within the grace period (1 s) plus start-up slack"
        daemon.wait_for_line("daemon stopped abandoned=1")
        assert sink.titles == ["[ATACMS] first"], "no new send began after SIGTERM"

        sink.release.set()
        again = daemon_factory(path)  # on SQLite a start drops the dead run's claims
        sink.posts.wait_for(3)
        again.wait_for_line("status=sent")
        assert again.stop() == 0
    finally:
        sink.close()
    assert sink.titles == ["[ATACMS] first", "[ATACMS] first", "[ATACMS] second"]
