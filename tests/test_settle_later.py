"""A message the channel accepted but the store could not record as sent (SQLite's write
lock held elsewhere past the busy timeout: a backup tool, ``sqlite3`` in a shell, a disk
that fills; PostgreSQL failing over between the send and its commit). The claim stays
until its lease runs out, and then the message was sent again: a duplicate alert. The
process now remembers what it sent and settles it before it claims anything else, so
the alert goes out once. Real SQLite (its own lock, taken by a second connection), the
real courier; the notifier is the test seam."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError

from monitor.app import App
from monitor.deliver import DeliveryReport, Sent, Unsettled
from monitor.errors import StorageError
from monitor.models import Alert, Snippet
from monitor.samples import rss_feed, rss_item
from tests.conftest import Clock, RecordingNotifier, SettingsFactory

RULE = {"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"], "stories": "each"}
SHORT_BUSY_MS = 200  # how long a writer of the app waits for the lock here (10 s in the app)


class LockingNotifier(RecordingNotifier):
    """Records like RecordingNotifier; after the next send (or batch), another connection
    takes the database's write lock and holds it until ``release``."""

    def __init__(self, database: Path) -> None:
        super().__init__()
        self.database = database
        self.lock_after_send = False
        self._holder: sqlite3.Connection | None = None

    def send(self, alert: Alert) -> None:
        super().send(alert)
        self._lock()

    def send_batch(self, channel: str, alerts: Sequence[Alert], reason: str) -> None:
        super().send_batch(channel, alerts, reason)
        self._lock()

    def _lock(self) -> None:
        if self.lock_after_send and self._holder is None:
            self.lock_after_send = False
            self._holder = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
            self._holder.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        assert self._holder is not None, "no send took the lock"
        self._holder.execute("COMMIT")
        self._holder.close()
        self._holder = None


def _short_busy_timeout(engine: Engine) -> None:
    def shorten(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={SHORT_BUSY_MS}")

    event.listen(engine, "connect", shorten)  # after the app's own, which sets 10 s
    engine.dispose()


def _states(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(s) for s in conn.execute(text("SELECT state FROM deliveries ORDER BY id")).scalars()]


def _feed(clock: Clock, *titles: str) -> bytes:
    items = [
        rss_item(title, f"https://news.example.org/{n}", clock.now - timedelta(minutes=5), f"{title}.")
        for n, title in enumerate(titles)
    ]
    return rss_feed("Desk", "https://news.example.org/", items)


@contextmanager
def _locked_after_first_send(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: LockingNotifier
) -> Iterator[App]:
    """The app on ``notifier``'s database, one feed with one matching article; its
    writers wait SHORT_BUSY_MS for the lock, which the first send hands to another connection."""
    served = httpserver.expect_request("/desk.xml")
    served.respond_with_data(_feed(clock, "ATACMS strike on Crimea"), content_type="application/rss+xml")
    feed = {"name": "Desk", "url": httpserver.url_for("/desk.xml")}
    settings = settings_factory(database=f"sqlite:///{notifier.database}", feeds=[feed], rules=[RULE])
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        _short_busy_timeout(app.store.engine)
        notifier.lock_after_send = True
        yield app


def test_a_sent_alert_the_store_could_not_record_is_not_sent_again(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, tmp_path: Path
) -> None:
    notifier = LockingNotifier(tmp_path / "monitor.db")
    with _locked_after_first_send(httpserver, settings_factory, clock, notifier) as app:
        first = app.run_once()
        assert [a.title for a in notifier.sent] == ["ATACMS strike on Crimea"]
        assert first.outcomes[0].status == "ok"
        notifier.release()
        assert _states(app.store.engine) == ["pending"]  # sent, but not recorded as such

        clock.advance(timedelta(hours=1))  # the claim's lease ran out long ago
        second = app.run_once()
        states = _states(app.store.engine)

    assert [a.title for a in notifier.sent] == ["ATACMS strike on Crimea"]
    assert [(o.title, o.status) for o in second.delivery.outcomes] == [("ATACMS strike on Crimea", "sent")]
    assert states == ["sent"]


def test_while_the_store_still_refuses_nothing_is_claimed_or_sent_again(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, tmp_path: Path
) -> None:
    """The lock stays held past the claim's lease: the next passes claim nothing (the
    store refuses every write), send nothing, and settle the send once it gives way;
    the second article, polled then, goes out after it."""
    notifier = LockingNotifier(tmp_path / "monitor.db")
    with _locked_after_first_send(httpserver, settings_factory, clock, notifier) as app:
        app.run_once()
        for _ in range(2):
            clock.advance(timedelta(minutes=30))
            assert app.courier.deliver().outcomes == ()
        assert len(app.dispatch.unsettled) == 1
        assert [a.title for a in notifier.sent] == ["ATACMS strike on Crimea"]
        notifier.release()

        httpserver.clear()
        served = httpserver.expect_request("/desk.xml")
        served.respond_with_data(
            _feed(clock, "ATACMS strike on Crimea", "Second ATACMS strike"),
            content_type="application/rss+xml",
        )
        clock.advance(timedelta(hours=1))
        third = app.run_once()
        states = _states(app.store.engine)
        unsettled = len(app.dispatch.unsettled)

    assert [a.title for a in notifier.sent] == ["ATACMS strike on Crimea", "Second ATACMS strike"]
    assert [(o.status, o.sent) for o in third.outcomes] == [("ok", 2)]  # the earlier one, settled first
    assert states == ["sent", "sent"] and unsettled == 0


def _alert(delivery_id: int) -> Alert:
    return Alert(
        delivery_id=delivery_id,
        channel="hook",
        feed="Desk",
        title=f"Alert {delivery_id}",
        link=None,
        published=datetime(2026, 12, 1, tzinfo=UTC),
        rules=("ATACMS",),
        snippet=Snippet("ATACMS"),
    )


def test_unsettled_sends_are_bounded_oldest_forgotten_first() -> None:
    """A store that refuses for days must not grow the process: past the limit, the oldest
    sends are forgotten (they may go out again: at least once), the newest kept in order."""
    unsettled = Unsettled(limit=3)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for n in range(5):
        unsettled.add(Sent(f"t{n}", (_alert(n),), now))
    taken = unsettled.take()
    assert [s.token for s in taken] == ["t2", "t3", "t4"]
    assert len(unsettled) == 3  # taken, not settled yet: a pass that looks now must wait
    unsettled.add(Sent("t5", (_alert(5),), now))
    unsettled.give_back(taken)  # what a pass could not settle goes back before the newer one
    unsettled.done(taken)
    assert len(unsettled) == 3
    left = unsettled.take()
    assert [s.token for s in left] == ["t3", "t4", "t5"]
    unsettled.done([])
    assert len(unsettled) == 3
    unsettled.done(left)
    assert len(unsettled) == 0


def test_the_app_records_such_a_send_when_it_closes(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, tmp_path: Path
) -> None:
    """A restart forgets what the process sent: closing tries once more to record it, so
    the next process does not send it again (here the lock gave way before the close)."""
    notifier = LockingNotifier(tmp_path / "monitor.db")
    with _locked_after_first_send(httpserver, settings_factory, clock, notifier) as app:
        app.run_once()
        notifier.release()
        engine = create_engine(f"sqlite:///{notifier.database}")
    try:
        assert _states(engine) == ["sent"]
    finally:
        engine.dispose()


def test_a_send_still_unrecorded_at_exit_is_named_in_the_log(
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    clock: Clock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = LockingNotifier(tmp_path / "monitor.db")
    with _locked_after_first_send(httpserver, settings_factory, clock, notifier) as app:
        app.run_once()
        [sent] = app.dispatch.unsettled.take()
        app.dispatch.unsettled.give_back([sent])
    notifier.release()
    [delivery] = [a.delivery_id for a in sent.alerts]
    assert f"deliveries=[{delivery}] unsettled at exit (may be sent again)" in caplog.text


class _PausingUnsettled(Unsettled):
    """The real list, with two meeting points for a race: ``taken`` is set once a pass
    holds the sends, and a thread named "late" stops just after it has counted them,
    until ``go``: the moment the old check read the list as empty."""

    def __init__(self) -> None:
        super().__init__()
        self.taken = threading.Event()
        self.go = threading.Event()

    def take(self) -> list[Sent]:
        found = super().take()
        if found:
            self.taken.set()
        return found

    def __len__(self) -> int:
        count = super().__len__()
        if threading.current_thread().name == "late":
            assert self.go.wait(10)
        return count


def test_a_pass_that_looks_while_another_settles_waits_for_it_and_sends_nothing_twice(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, tmp_path: Path
) -> None:
    """Thread A holds the unrecorded send (taken, the list empty) while the store still
    refuses; thread B looks then. The look must count A's send, so B waits for A and
    records the send itself once the store recovers; it used to see an empty list and an
    idle lock a moment later, claim the delivery (its lease had run out) and send it again."""
    notifier = LockingNotifier(tmp_path / "monitor.db")
    with _locked_after_first_send(httpserver, settings_factory, clock, notifier) as app:
        app.run_once()
        unsettled = _PausingUnsettled()
        unsettled.give_back(app.dispatch.unsettled.take())
        app.dispatch.unsettled = unsettled
        clock.advance(timedelta(hours=1))  # the claim's lease ran out long ago

        reports: dict[str, DeliveryReport] = {}
        first = threading.Thread(target=lambda: reports.setdefault("A", app.courier.deliver()), name="A")
        late = threading.Thread(target=lambda: reports.setdefault("B", app.courier.deliver()), name="late")
        first.start()
        assert unsettled.taken.wait(10)  # A settles; the lock is still held elsewhere
        late.start()
        first.join(10)
        assert reports["A"].outcomes == ()  # the store refused: A gave the send back
        notifier.release()  # the store recovers
        unsettled.go.set()
        late.join(10)
        again = app.courier.deliver()
        states = _states(app.store.engine)

    assert [a.title for a in notifier.sent] == ["ATACMS strike on Crimea"]
    assert [(o.title, o.status) for o in reports["B"].outcomes] == [("ATACMS strike on Crimea", "sent")]
    assert again.outcomes == () and states == ["sent"]


def test_a_database_error_that_is_no_refusal_keeps_the_unrecorded_send(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, tmp_path: Path
) -> None:
    """An error the store does not read as a refusal (here a trigger's ABORT, an
    IntegrityError: what a bug or a hand-made trigger gives) ends the pass with it, and
    the send stays remembered: recorded once the error is gone, never sent again."""
    notifier = LockingNotifier(tmp_path / "monitor.db")
    with _locked_after_first_send(httpserver, settings_factory, clock, notifier) as app:
        app.run_once()
        notifier.release()
        with app.store.engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE UPDATE ON deliveries "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
                )
            )
        with pytest.raises(IntegrityError, match="refused by a trigger"):
            app.courier.deliver()
        kept = len(app.dispatch.unsettled)
        with app.store.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse"))
        clock.advance(timedelta(hours=1))
        settled = app.courier.deliver()
        states = _states(app.store.engine)

    assert kept == 1
    assert [(o.title, o.status) for o in settled.outcomes] == [("ATACMS strike on Crimea", "sent")]
    assert [a.title for a in notifier.sent] == ["ATACMS strike on Crimea"] and states == ["sent"]


class ReadOnlyAfterSend(RecordingNotifier):
    """Records like RecordingNotifier; after the next send, every transaction of the
    app's PostgreSQL engine is read only (a standby after a failover) until ``recover``."""

    def __init__(self) -> None:
        super().__init__()
        self.after_send = False
        self.read_only = False

    def send(self, alert: Alert) -> None:
        super().send(alert)
        if self.after_send:
            self.after_send, self.read_only = False, True

    def recover(self) -> None:
        self.read_only = False

    def watch(self, engine: Engine) -> None:
        def begin(conn: Any) -> None:
            if self.read_only:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")

        event.listen(engine, "begin", begin)


@pytest.mark.postgres
def test_a_read_only_postgresql_is_a_refusal_and_the_send_is_recorded_later(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, pg_url: str
) -> None:
    """PostgreSQL refuses writes on a standby with ReadOnlySqlTransaction, which the
    driver raises as an InternalError, not an OperationalError: it is a store refusal
    all the same. The send stays remembered, a cycle on the standby is the store's error
    (the daemon logs it and tries at the next tick), and each alert goes out once."""
    notifier = ReadOnlyAfterSend()
    served = httpserver.expect_request("/desk.xml")
    served.respond_with_data(_feed(clock, "ATACMS strike on Crimea"), content_type="application/rss+xml")
    feed = {"name": "Desk", "url": httpserver.url_for("/desk.xml")}
    settings = settings_factory(database=pg_url, feeds=[feed], rules=[RULE])
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        notifier.watch(app.store.engine)
        notifier.after_send = True
        first = app.run_once()
        kept = len(app.dispatch.unsettled)
        refused = app.courier.deliver()  # still read only: nothing claimed, nothing sent
        served.respond_with_data(
            _feed(clock, "ATACMS strike on Crimea", "ATACMS battery hit"), content_type="application/rss+xml"
        )
        clock.advance(timedelta(hours=1))
        with pytest.raises(StorageError, match="read-only transaction"):
            app.run_once()  # no feed can be claimed on the standby: the cycle's store error
        notifier.recover()
        clock.advance(timedelta(hours=1))  # the claim's lease ran out long ago
        second = app.run_once()
        states = _states(app.store.engine)

    assert first.outcomes[0].status == "ok" and kept == 1 and refused.outcomes == ()
    assert sorted(a.title for a in notifier.sent) == ["ATACMS battery hit", "ATACMS strike on Crimea"]
    # the poll's own delivery pass records the remembered send and sends the new one
    assert second.outcomes[0].sent + sum(o.status == "sent" for o in second.delivery.outcomes) == 2
    assert states == ["sent", "sent"]
