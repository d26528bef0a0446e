"""Chaos on real PostgreSQL: three real daemons (``python -m monitor run``) share one
database; a webhook sink answers some messages more slowly than the delivery lease; a
slow feed outlasts its feed lease mid-poll; daemons are killed with SIGKILL at
seeded-random moments and replaced.

What must hold: every alert arrives; a message arrives twice only because a daemon died
with it in flight (at most one per channel per kill); ``max_per_hour`` is never exceeded
in a clock hour, and the alerts over it are held for the next hour's summary.

``MONITOR_CHAOS_SEED`` picks another run; the tally line (``-s`` shows it) can be quoted.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from monitor.samples import rss_feed, rss_item
from tests.conftest import Daemon, Inbox

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SEED = int(os.environ.get("MONITOR_CHAOS_SEED", "20261127"))
FEEDS, ITEMS = 24, 2  # plus one slow feed with ITEMS more
ALERTS = (FEEDS + 1) * ITEMS
LIMIT = 8  # pager's max_per_hour
TIMEOUT = 2.0  # delivery.timeout: the claim lasts 4x this, 8 s
SLOW_SEND = 12.0  # seconds a slow answer takes: longer than the lease plus a delivery tick
SLOW_FEED = 5.0  # seconds the slow feed takes: longer than poll.lease (3 s)
GAP = 0.3  # a slow answer trickles a byte every GAP seconds (well under the read timeout)
RUN = 90.0  # the longest the whole run may take before the test fails
SUMMARY = re.compile(r"^\d+ more alerts? held back by the hourly limit$")


@dataclass(frozen=True, slots=True)
class Post:
    at: datetime
    title: str
    key: str


class Sink:
    """A webhook receiver that records each POST on arrival; answers with index in ``slow``
    trickle their body for SLOW_SEND seconds (a slow but live server)."""

    def __init__(self, events: Inbox, slow: set[int] | None = None) -> None:
        self.posts: list[Post] = []
        self.slow = slow or set()
        self.slow_started = 0
        self.slow_running = threading.Event()
        self.closing = threading.Event()
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                slow = sink.record(Post(datetime.now(UTC), body["title"], body["monitor_id"]))
                events.add("post")
                pad = b"x" * int(SLOW_SEND / GAP)
                self.send_response(200)
                self.send_header("Content-Length", str(len(pad)))
                self.end_headers()
                try:
                    if not slow:
                        self.wfile.write(pad)
                        return
                    for i in range(len(pad)):
                        self.wfile.write(pad[i : i + 1])
                        if sink.closing.wait(GAP):
                            return
                except OSError:  # the daemon died while we answered
                    pass
                finally:
                    if slow:
                        sink.slow_running.clear()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def record(self, post: Post) -> bool:
        with self._lock:
            self.posts.append(post)
            slow = len(self.posts) in self.slow
            if slow:
                self.slow_started += 1
                self.slow_running.set()
        return slow

    def keys(self) -> Counter[str]:
        with self._lock:
            return Counter(p.key for p in self.posts)

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


class Feeds:
    """FEEDS quick feeds and one slow one on a threaded loopback server; fetches of the
    slow one are counted, with the most that were ever in progress at once."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.closing = threading.Event()
        self.slow_fetches = 0
        self.slow_in_flight = 0
        self.slow_most = 0
        self._lock = threading.Lock()
        self.bodies = {
            n: rss_feed(
                f"Feed {n}",
                "https://news.example/",
                [
                    rss_item(
                        f"ATACMS story {n}-{i}",
                        f"https://news.example/{n}/{i}",
                        now - timedelta(minutes=5 + i),
                        "ATACMS deliveries continue.",
                    )
                    for i in range(ITEMS)
                ],
            )
            for n in range(FEEDS + 1)
        }
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = feeds.serve(int(self.path.rsplit("/", 1)[1]))
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # a daemon killed mid-fetch
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/feed/"

    def serve(self, n: int) -> bytes:
        if n == FEEDS:  # the slow one: longer than its lease
            with self._lock:
                self.slow_fetches += 1
                self.slow_in_flight += 1
                self.slow_most = max(self.slow_most, self.slow_in_flight)
            self.closing.wait(SLOW_FEED)
            with self._lock:
                self.slow_in_flight -= 1
        return self.bodies[n]

    def yaml(self, count: int) -> str:
        return "\n".join(f"  - {{name: Feed {n}, url: '{self.base}{n}'}}" for n in range(count))

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


class Instance(Daemon):
    """A real daemon whose log lines also wake the test's waits."""

    def __init__(self, config: Path, events: Inbox, database: str) -> None:
        self.events = events
        super().__init__(config, MONITOR_DATABASE_URL=database)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.add(line.rstrip("\n"))
            self.events.add("line")


@pytest.fixture
def events() -> Inbox:
    return Inbox()


@pytest.fixture
def fleet() -> Iterator[list[Instance]]:
    started: list[Instance] = []
    yield started
    for instance in started:
        if instance.proc.poll() is None:
            instance.proc.kill()
            instance.proc.wait(10)
        instance._reader.join(5)
        if instance.proc.stderr is not None:
            instance.proc.stderr.close()


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


def _config(feeds: Feeds, hook: Sink, pager: Sink, count: int) -> str:
    return f"""
poll: {{interval: 1h, first_poll: all, lease: 3s, concurrency: 4}}
shutdown_grace: 2s
delivery: {{timeout: {TIMEOUT}, backoff: [1s, 1s, 2s, 2s, 4s, 4s]}}
channels:
  hook: "{hook.url}"
  pager: {{urls: ["{pager.url}"], max_per_hour: {LIMIT}}}
feeds:
{feeds.yaml(count)}
# one alert per article: the generated items look alike and would fold into one story
rules: [{{name: ATACMS, all: [ATACMS], notify: [hook, pager], stories: each}}]
"""


def _settled(engine: Engine) -> bool:
    """Every alert's two messages are sent, or (pager) held for the next hour's summary."""
    with engine.connect() as conn:
        total, unsettled = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE NOT (state = 'sent'"
                " OR (channel = 'pager' AND state = 'pending' AND batched AND claim_token IS NULL)))"
                " FROM deliveries"
            )
        ).one()
    return bool(total == 2 * ALERTS and unsettled == 0)


def _wait(events: Inbox, condition: Callable[[], bool], deadline: float, what: str) -> None:
    """Wait (woken by each post and each log line) until ``condition`` holds."""
    left = deadline - time.monotonic()
    assert left > 0 and events.wait_until(condition, left), f"chaos: timed out waiting for {what}"


def _kill(fleet: list[Instance], rng: random.Random, make: Callable[[], Instance]) -> None:
    victim = rng.choice([i for i in fleet if i.proc.poll() is None])
    victim.proc.kill()
    victim.proc.wait(10)
    fleet.append(make())


def _duplicates(keys: Counter[str]) -> int:
    return sum(n - 1 for n in keys.values())


def test_chaos_three_daemons_kill_9_slow_sink_every_alert_arrives_and_limits_hold(
    pg_url: str,
    write_config: Callable[[str], Path],
    events: Inbox,
    fleet: list[Instance],
    engine: Engine,
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    deadline = started + RUN
    feeds = Feeds()
    hook = Sink(events, slow=set(rng.sample(range(10, 45), 6)))
    pager = Sink(events)
    path = write_config(_config(feeds, hook, pager, FEEDS + 1))

    def make() -> Instance:
        return Instance(path, events, pg_url)

    kills = 0
    try:
        fleet.extend(make() for _ in range(3))
        first, last = rng.randint(3, 8), rng.randint(25, 38)
        _wait(events, lambda: len(hook.posts) >= first, deadline, f"{first} posts")
        _kill(fleet, rng, make)
        kills += 1
        _wait(events, hook.slow_running.is_set, deadline, "a slow send in flight")
        _kill(fleet, rng, make)
        kills += 1
        _wait(events, lambda: len(hook.posts) >= last, deadline, f"{last} posts")
        _kill(fleet, rng, make)
        kills += 1
        _wait(events, lambda: len(hook.keys()) == ALERTS and _settled(engine), deadline, "every alert")
        for instance in fleet:
            if instance.proc.poll() is None:
                assert instance.stop() == 0
    finally:
        feeds.close()
        hook.close()
        pager.close()
    runtime = time.monotonic() - started

    with engine.connect() as conn:
        wanted = set(
            conn.execute(text("SELECT message_key FROM deliveries WHERE channel = 'hook'")).scalars()
        )
        pager_rows = Counter(
            f"{state}{'-batched' if batched else ''}"
            for state, batched in conn.execute(
                text("SELECT state, batched FROM deliveries WHERE channel = 'pager'")
            )
        )
    held = pager_rows["pending-batched"]
    retries = [line for i in fleet for line in i.lines.items if "status=retry" in line or "lost" in line]
    hook_keys = hook.keys()
    singles = [p for p in pager.posts if not SUMMARY.match(p.title)]
    pager_keys = Counter(p.key for p in singles)
    per_hour = Counter(p.at.replace(minute=0, second=0, microsecond=0) for p in singles)
    tally = (
        f"chaos seed={SEED} alerts={ALERTS} kills={kills} slow_sends={hook.slow_started}"
        f" duplicates={_duplicates(hook_keys)}+{_duplicates(pager_keys)} (hook+pager)"
        f" pager_sent={len(pager_keys)} held={held} limit={LIMIT}/h runtime={runtime:.1f}s"
    )
    print(tally)

    assert set(hook_keys) == wanted and len(wanted) == ALERTS, f"every alert arrived: {tally}"
    assert _duplicates(hook_keys) <= kills, f"duplicates only from kills: {tally} {retries}"
    assert _duplicates(pager_keys) <= kills, f"duplicates only from kills: {tally} {retries}"
    assert max(per_hour.values()) <= LIMIT, f"max_per_hour held in each clock hour: {per_hour} {tally}"
    hours = len(per_hour) or 1
    assert held > 0 and pager_rows["sent"] <= LIMIT * hours, f"the rest was held: {pager_rows} {tally}"
    assert pager_rows["sent"] + pager_rows["sent-batched"] + held == ALERTS, f"{pager_rows}"


def test_chaos_feed_lease_a_slow_feed_is_polled_by_one_daemon_at_a_time(
    pg_url: str,
    write_config: Callable[[str], Path],
    events: Inbox,
    fleet: list[Instance],
    engine: Engine,
) -> None:
    """DESIGN.md: each feed is polled by one instance at a time, even when a poll outlasts
    its lease (the poller renews it). Its alerts arrive once either way."""
    deadline = time.monotonic() + RUN
    feeds = Feeds()
    hook, pager = Sink(events), Sink(events)
    path = write_config(_config(feeds, hook, pager, FEEDS + 1))
    try:
        fleet.extend(Instance(path, events, pg_url) for _ in range(2))
        _wait(events, lambda: len(hook.keys()) == ALERTS and _settled(engine), deadline, "every alert")
        _wait(events, lambda: feeds.slow_in_flight == 0, deadline, "the slow polls to end")
        for instance in fleet:
            assert instance.stop() == 0
    finally:
        feeds.close()
        hook.close()
        pager.close()
    assert max(hook.keys().values()) == 1, "its alerts arrived once"
    assert feeds.slow_most == 1, f"the slow feed was fetched by {feeds.slow_most} daemons at once"
