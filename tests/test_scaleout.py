"""Several daemons on one PostgreSQL: each feed polled by one of them, each alert sent
once, and a killed daemon's feeds taken over when its leases expire."""

from __future__ import annotations

import re
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.samples import rss_feed, rss_item
from monitor.store import Store
from tests.conftest import WAIT, Daemon, JsonSink

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
FEEDS = 200


@pytest.fixture
def instances() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for instance in started:
        if instance.proc.poll() is None:
            instance.stop()


class Site:
    """200 feeds on one loopback server, one ATACMS story each; hits counted per feed."""

    def __init__(self, httpserver: HTTPServer) -> None:
        self.hits: Counter[int] = Counter()
        self.stalled: set[int] = set()
        self.stall_seen = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.base = httpserver.url_for("/feed/")
        now = datetime.now(UTC)
        self.bodies = {
            n: rss_feed(
                f"Feed {n}",
                "https://news.example/",
                [
                    rss_item(
                        f"ATACMS story {n}", f"https://news.example/{n}", now - timedelta(minutes=5), "ATACMS"
                    )
                ],
            )
            for n in range(FEEDS)
        }
        httpserver.expect_request(re.compile(r"^/feed/\d+$")).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        n = int(request.path.rsplit("/", 1)[1])
        with self._lock:
            self.hits[n] += 1
            first = self.hits[n] == 1
        if first and n in self.stalled:
            self.stall_seen.set()
            self.release.wait(WAIT)
        return Response(self.bodies[n], content_type="application/rss+xml")

    def config(self, sink: JsonSink, lease: str) -> str:
        feeds = "\n".join(f"  - {{name: Feed {n}, url: '{self.base}{n}'}}" for n in range(FEEDS))
        return f"""
poll: {{interval: 1h, first_poll: all, lease: {lease}, concurrency: 8}}
shutdown_grace: 1s
# A loaded 2-core CI box can be slow to answer: a read timeout would be a retry, and a
# retry after a send that did arrive is the documented at-least-once window, not a bug.
channels: {{hook: "{sink.url()}?rto=30"}}
feeds:
{feeds}
# one alert per article: the generated items look alike and would fold into one story
rules: [{{name: ATACMS, all: [ATACMS], notify: [hook], stories: each}}]
"""


def _delivered(sink: JsonSink) -> Counter[str]:
    return Counter(p["monitor_id"] for p in sink.posts)


def test_three_daemons_share_the_feeds_and_send_each_alert_once(
    pg_url: str,
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    instances: list[Daemon],
) -> None:
    site = Site(httpserver)
    path = write_config(site.config(json_sink, lease="1m"))
    for _ in range(3):
        instances.append(Daemon(path, MONITOR_DATABASE_URL=pg_url))
    json_sink.inbox.wait_for(FEEDS, timeout=60)
    for instance in instances:
        assert instance.stop() == 0

    assert set(site.hits) == set(range(FEEDS))
    assert max(site.hits.values()) == 1, "every feed was polled once in its interval"
    delivered = _delivered(json_sink)
    retries = [line for i in instances for line in i.lines.items if "status=retry" in line]
    assert len(delivered) == FEEDS and max(delivered.values()) == 1, f"every alert was sent once {retries}"
    pollers = [
        sum(1 for line in i.lines.items if "poll feed=" in line and "status=ok" in line) for i in instances
    ]
    assert sum(pollers) == FEEDS
    assert sum(1 for n in pollers if n > 0) >= 2, f"the work was shared: {pollers}"


def test_a_killed_daemons_feeds_are_taken_over_after_its_lease(
    pg_url: str,
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    instances: list[Daemon],
) -> None:
    site = Site(httpserver)
    site.stalled = set(range(FEEDS))  # the first daemon hangs on whatever it polls first
    path = write_config(site.config(json_sink, lease="4s"))
    first = Daemon(path, MONITOR_DATABASE_URL=pg_url)
    instances.append(first)
    assert site.stall_seen.wait(30)
    first.proc.kill()
    assert first.proc.wait(WAIT) == -signal.SIGKILL
    store = Store.open(pg_url)
    try:
        held = [f for f in store.feed_statuses() if f.last_poll_at is None]
        assert len(held) == FEEDS
    finally:
        store.close()
    site.release.set()
    for _ in range(2):
        instances.append(Daemon(path, MONITOR_DATABASE_URL=pg_url))
    json_sink.inbox.wait_for(FEEDS, timeout=90)

    delivered = _delivered(json_sink)
    assert len(delivered) == FEEDS and max(delivered.values()) == 1
    survivors = instances[1:]
    assert all(any("daemon started" in line for line in i.lines.items) for i in survivors)
