"""Helpers for the delivery tests: queue outbox rows directly, a gated Notifier (our own
seam), and a log watcher to wait on what the courier says."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import create_engine, text

from monitor.config import ChannelSpec, DeliverySettings
from monitor.deliver import Courier, DeliveryReport, Dispatch
from monitor.errors import NotifyError
from monitor.models import Alert, Entry, Match, Snippet
from monitor.store import PollResult, Store
from tests.conftest import WAIT, Clock, Inbox

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
FEED_URL = "https://news.example/feed.xml"


def queue(
    store: Store,
    titles: Sequence[str],
    channels: Sequence[str],
    when: datetime = NOW,
    hold: dict[str, datetime] | None = None,
) -> list[int]:
    """Store one matched article per title, routed to ``channels``: their delivery ids.

    ``hold`` maps digest channels to when their digest goes out (their rows are batched).
    """
    store.sync_feeds([("News", FEED_URL)], when)
    feed = next(f.id for f in store.feeds() if f.url == FEED_URL)
    entries = [
        Entry(f"k-{t}", t, f"https://news.example/{i}", None, when, "", "ATACMS", "", "")
        for i, t in enumerate(titles)
    ]
    match = Match("ATACMS", "summary", ("ATACMS",), Snippet("ATACMS", ((0, 6),)))
    saved = store.save_poll(
        feed,
        PollResult(None, None, "News"),
        entries,
        {e.key: [match] for e in entries},
        {"ATACMS": list(channels)},
        when,
        when + timedelta(hours=1),
        hold,
    )
    return list(saved.delivery_ids)


def policy(timeout: float = 30.0, backoff: Sequence[str] = ("1m", "5m")) -> DeliverySettings:
    return DeliverySettings.model_validate({"timeout": timeout, "backoff": list(backoff)})


def channel(max_per_hour: int | None = None, digest: str | None = None) -> ChannelSpec:
    return ChannelSpec.model_validate(
        {"urls": ["json://127.0.0.1:9/x"], "max_per_hour": max_per_hour, "digest": digest}
    )


def courier(store: Store, notifier: Any, clock: Clock, **kw: Any) -> Courier:
    """A courier of its own process: its own lanes (as a second daemon would have)."""
    return Courier(
        store,
        notifier,
        kw.pop("policy", None) or policy(),
        clock,
        kw.pop("channels", None),
        dispatch=kw.pop("dispatch", None) or Dispatch(),
        **kw,
    )


class GateNotifier:
    """Our Notifier seam: records what it sends; titles in ``hold`` ("*": all) wait for
    ``release``; titles in ``raises`` raise that exception instead."""

    def __init__(self, hold: Sequence[str] = (), raises: dict[str, BaseException] | None = None) -> None:
        self.hold = set(hold)
        self.raises = raises or {}
        self.sent: list[Alert] = []
        self.batches: list[tuple[str, list[Alert], str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.failing_batches: BaseException | None = None
        self._lock = threading.Lock()

    def _gate(self, title: str) -> None:
        if title in self.hold or "*" in self.hold:
            self.entered.set()
            assert self.release.wait(WAIT), "the test never released the send"
        if title in self.raises:
            raise self.raises[title]

    def send(self, alert: Alert) -> None:
        self._gate(alert.title)
        with self._lock:
            self.sent.append(alert)

    def send_batch(self, channel: str, alerts: Sequence[Alert], reason: str) -> None:
        if self.failing_batches is not None:
            raise self.failing_batches
        with self._lock:
            self.batches.append((channel, list(alerts), reason))


class RefusingNotifier(GateNotifier):
    """Refuses every message the way a channel that is down does."""

    def send(self, alert: Alert) -> None:
        raise NotifyError(f"notify: {alert.channel}: refused (test)")


class LogWatch(logging.Handler):
    """Counts log records of ``monitor.deliver`` containing a needle; wait on the count."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.DEBUG)
        self.needle = needle
        self.count = 0
        self.records: list[logging.LogRecord] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            with self._cond:
                self.count += 1
                self.records.append(record)
                self._cond.notify_all()

    def wait_for(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.count >= count, WAIT), f"no {count}x {self.needle!r}"


@contextmanager
def watching(needle: str) -> Iterator[LogWatch]:
    logger = logging.getLogger("monitor.deliver")
    watch, level = LogWatch(needle), logger.level
    logger.addHandler(watch)
    logger.setLevel(logging.DEBUG)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)


def in_thread(work: Callable[[], DeliveryReport]) -> tuple[threading.Thread, list[DeliveryReport]]:
    """Run a delivery pass in its own thread (as another worker would); its report lands in the list."""
    reports: list[DeliveryReport] = []
    thread = threading.Thread(target=lambda: reports.append(work()), daemon=True)
    thread.start()
    return thread, reports


def rows(url: str, sql: str) -> list[Any]:
    """Plain SQL against the test database (what an operator would look at)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        engine.dispose()


class StallSink:
    """A webhook receiver on 127.0.0.1 that records each POST on arrival and holds the
    answer to those whose title contains ``stall_on`` until ``release`` is set."""

    def __init__(self, stall_on: str = "slow") -> None:
        self.posts = Inbox()
        self.stalled = threading.Event()
        self.release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                sink.posts.add(body)
                if stall_on in body.get("title", ""):
                    sink.stalled.set()
                    sink.release.wait(WAIT)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def titles(self) -> list[str]:
        return sorted(str(p["title"]) for p in self.posts.items)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
