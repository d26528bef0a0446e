"""What owned, per-message claims cost a delivery pass (ADR 0012).

Individual messages are claimed a few at a time (one transaction: select, stamp the
token, read the alerts; a channel with ``max_per_hour`` also takes its quota units
there), each sent under a heartbeat thread, then settled (one transaction each). The
cases, each over N queued messages and a notifier that returns at once (so only our own
work is timed):

- ``one claim (before)``: the previous design: one claim for every due message, then
  one settle per message (no heartbeat, no token check);
- ``claims of 4 (now)``: ``Courier.deliver`` as it runs now: a claim holds what fits in
  one lease (lease / delivery.timeout = 4 messages);
- ``claims of 4 + quota``: the same on a channel with ``max_per_hour`` (never reached);
- ``digest``: the N messages as one batched message (one claim, one settle);
- ``loopback json:// send``: one real Apprise send to a webhook on 127.0.0.1, for scale.

``python -m bench delivery [--messages N] [--postgres URL]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import create_engine, text

from monitor.config import ChannelSpec, DeliverySettings, Settings
from monitor.deliver import Courier, Dispatch
from monitor.models import Alert, Entry, Match, Snippet
from monitor.notify import AppriseNotifier
from monitor.store import PollResult, Store

RESULTS = Path(__file__).resolve().parent / "results"
NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
POLICY = DeliverySettings()


@dataclass(frozen=True, slots=True)
class Row:
    backend: str
    case: str
    messages: int
    ms_per_message: float


class _Instant:
    """A notifier that accepts everything at once: only monitor's own work is timed."""

    def send(self, alert: Alert) -> None:
        pass

    def send_batch(self, channel: str, alerts: Sequence[Alert], reason: str) -> None:
        pass


def _queue(store: Store, n: int, channel: str, *, batched: bool = False) -> None:
    store.sync_feeds([("Bench", "https://bench.example/feed")], NOW)
    feed = store.feeds()[0].id
    entries = [
        Entry(f"{channel}-{i}", f"Story {i}", f"https://bench.example/{i}", None, NOW, "", "x", "", "")
        for i in range(n)
    ]
    match = Match("r", "summary", ("x",), Snippet("x", ((0, 1),)))
    hold = {channel: NOW} if batched else None
    result = PollResult(None, None, "Bench")
    matches = {e.key: [match] for e in entries}
    store.save_poll(feed, result, entries, matches, {"r": [channel]}, NOW, NOW, hold)


def _timed(work: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000 / n


def _batch_claim(store: Store, lease: timedelta) -> Callable[[], object]:
    def run() -> None:
        claim = store.claim_due(NOW, lease, limit=1_000_000)
        for alert in claim.alerts:
            store.mark_sent(claim.token, [alert.delivery_id], NOW)

    return run


def _courier(store: Store, channels: dict[str, ChannelSpec] | None = None) -> Courier:
    return Courier(store, _Instant(), POLICY, lambda: NOW, channels, dispatch=Dispatch())


@contextmanager
def _fresh(url: str | None) -> Iterator[tuple[str, Store]]:
    """An empty database: a temporary SQLite file, or the PostgreSQL one emptied."""
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(f"sqlite:///{tmp}/bench.db")
            try:
                yield "sqlite", store
            finally:
                store.close()
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    store = Store.open(url)
    try:
        yield "postgresql", store
    finally:
        store.close()


def _cases(n: int) -> list[tuple[str, str, bool, Callable[[Store], Callable[[], object]]]]:
    limited = {"limited": ChannelSpec(urls=("json://x",), max_per_hour=10 * n)}
    return [
        ("one claim (before)", "hook", False, lambda s: _batch_claim(s, POLICY.timeout * 4)),
        ("claims of 4 (now)", "hook", False, lambda s: _courier(s).deliver),
        ("claims of 4 + quota", "limited", False, lambda s: _courier(s, limited).deliver),
        ("digest", "brief", True, lambda s: _courier(s).deliver),
    ]


def _loopback_send_ms(sends: int) -> float:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"json://127.0.0.1:{server.server_address[1]}/hook"
        notifier = AppriseNotifier(Settings.model_validate({"channels": {"hook": url}}))
        alert = Alert(1, "hook", "Bench", "Story", None, NOW, ("r",), Snippet("x"))

        def send_all() -> None:
            for _ in range(sends):
                notifier.send(alert)

        return _timed(send_all, sends)
    finally:
        server.shutdown()
        server.server_close()


def run(messages: int, postgres: str | None, out: TextIO, results: Path) -> list[Row]:
    """Measure every case on SQLite (and PostgreSQL); print the table, write JSON."""
    rows: list[Row] = []
    for url in [None, postgres] if postgres else [None]:
        for case, channel, batched, make in _cases(messages):
            with _fresh(url) as (backend, store):
                _queue(store, messages, channel, batched=batched)
                rows.append(Row(backend, case, messages, _timed(make(store), messages)))
    sends = max(10, messages // 10)
    rows.append(Row("-", "loopback json:// send", sends, _loopback_send_ms(sends)))
    print(f"{'backend':<11} {'case':<22} {'messages':>8} {'ms/message':>11}", file=out)
    for r in rows:
        print(f"{r.backend:<11} {r.case:<22} {r.messages:>8} {r.ms_per_message:>11.3f}", file=out)
    results.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "delivery",
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "rows": [asdict(r) for r in rows],
    }
    (results / "delivery.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return rows


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench delivery")
    parser.add_argument("--messages", type=int, default=1000, help="messages per case (default 1000)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("MONITOR_BENCH_DATABASE_URL"),
        help="a PostgreSQL database to EMPTY and use (default $MONITOR_BENCH_DATABASE_URL)",
    )
    args = parser.parse_args(list(argv))
    run(args.messages, args.postgres, sys.stdout, RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
