"""The page stage end to end: a teaser feed served over loopback, its article pages read
through the real fetcher and extracted in the real worker pool, within a poll's budget.

- A page whose extraction kills its worker by a signal is that entry's ``page_error``;
  the poll, the other pages and the next poll are unaffected, and the worker replaced.
- Many teasers linking to large and slow pages: the poll ends within its time budget
  while pages still hang, skipped entries say why, and neither this process's memory
  nor the database grows with the number of entries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from monitor.app import App
from monitor.errors import ExtractError
from monitor.extract import Page
from monitor.extract_pool import ExtractPool
from monitor.models import Fetched, PollOutcome
from monitor.pages import SKIPPED, Budget, read_page
from monitor.parse import parse
from monitor.pipeline import poll_feed
from monitor.samples import rss_feed, rss_item, voa_page
from tests.conftest import WAIT, Clock, RecordingNotifier, SettingsFactory
from tests.test_extract_pool import MARKER, segfault_on_marker

WHEN = datetime(2024, 5, 31, 17, 0, tzinfo=UTC)
Route = Callable[[BaseHTTPRequestHandler], None]
RULES = [{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"], "stories": "each"}]  # per article


class Site:
    """A threaded loopback HTTP server with a route table; ``hold`` makes routes wait."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.release = threading.Event()
        self.waiting = 0
        routes, site = self.routes, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                with contextlib.suppress(OSError):  # the client hung up
                    route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._site = site

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def serve(self, path: str, data: bytes, content_type: str = "text/html") -> None:
        def route(h: BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        self.routes[path] = route

    def hold(self, path: str, data: bytes) -> None:
        """A page that answers only once the test sets ``release`` (a server that hangs)."""

        def route(h: BaseHTTPRequestHandler) -> None:
            self.waiting += 1
            self.release.wait(WAIT * 6)
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        self.routes[path] = route

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


def teasers(site: Site, paths: list[str]) -> bytes:
    items = [
        rss_item(f"Story {n}", site.url(path), WHEN, "A short teaser.", guid=path)
        for n, path in enumerate(paths)
    ]
    return rss_feed("Teasers", "https://news.example.com/", items)


@pytest.fixture
def make_app(
    settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock, site: Site
) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def make(**fetch: Any) -> App:
        settings = settings_factory(
            feeds=[{"name": "Teasers", "url": site.url("/feed.xml"), "full_text": "auto"}],
            rules=RULES,
            fetch={"deadline": 30, **fetch},
        )
        app = App.from_settings(settings, clock=clock, notifier=notifier, strict=True)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def poll(app: App, **deps: Any) -> PollOutcome:
    """One poll of the feed through the real pipeline, with some of PollDeps replaced."""
    app.sync_feeds()
    [feed] = app.store.claim_feeds(app.clock(), app.settings.poll.lease, "test", 10, due_only=False)
    return poll_feed(feed, dataclasses.replace(app.deps, **deps))


def stored(app: App) -> list[tuple[str, str, str | None]]:
    with app.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT title, page_text, page_error FROM articles ORDER BY id"))
        return [(r.title, r.page_text, r.page_error) for r in rows]


# --- isolation ---------------------------------------------------------------------


def test_a_page_that_kills_its_worker_is_that_entrys_error_and_the_poll_goes_on(
    make_app: Callable[..., App], site: Site, notifier: RecordingNotifier
) -> None:
    site.serve("/feed.xml", teasers(site, ["/a/1", "/a/crash", "/a/3"]), "application/rss+xml")
    site.serve("/a/1", voa_page())
    site.serve("/a/crash", voa_page().replace(b"<body>", b"<body>" + MARKER, 1))
    site.serve("/a/3", voa_page())
    app = make_app(pages_in_parallel=1)  # in feed order: the crash comes between two good pages
    with ExtractPool(timeout=30, size=1, function=segfault_on_marker) as pool:
        outcome = poll(app, extractor=pool.extract)
        assert pool.started == 2  # the one that crashed, and its replacement for the third page
    assert outcome.status == "ok" and outcome.error is None
    rows = stored(app)
    assert [(title, error) for title, _, error in rows] == [
        ("Story 0", None),
        ("Story 1", "extract: the extractor process died (exit code -11)"),
        ("Story 2", None),
    ]
    assert "ATACMS" in rows[0][1] and "ATACMS" in rows[2][1] and rows[1][1] == ""
    assert sorted(a.title for a in notifier.sent) == ["Story 0", "Story 2"]
    site.serve("/feed.xml", teasers(site, ["/a/1", "/a/3", "/a/4"]), "application/rss+xml")
    site.serve("/a/4", voa_page())
    assert poll(app).status == "ok"  # the next poll, on the app's own pool
    assert [error for _, _, error in stored(app)][3:] == [None]


def test_the_app_extracts_in_its_own_pool_and_replaces_dead_workers(
    make_app: Callable[..., App], site: Site, notifier: RecordingNotifier
) -> None:
    site.serve("/feed.xml", teasers(site, ["/a/1"]), "application/rss+xml")
    site.serve("/a/1", voa_page())
    app = make_app()
    app.run_once()
    assert app.extract_pool.started == 1 and app.extract_pool.workers == 1
    assert [a.title for a in notifier.sent] == ["Story 0"]


# --- the budget ----------------------------------------------------------------------


def test_pages_over_the_count_budget_keep_their_feed_text(make_app: Callable[..., App], site: Site) -> None:
    paths = [f"/a/{n}" for n in range(6)]
    site.serve("/feed.xml", teasers(site, paths), "application/rss+xml")
    for path in paths:
        site.serve(path, voa_page())
    app = make_app(pages_per_poll=2, pages_in_parallel=1)
    assert poll(app).status == "ok"
    skipped = f"{SKIPPED}: over fetch.pages_per_poll (2 pages in one poll)"
    assert [error for _, _, error in stored(app)] == [None, None] + [skipped] * 4


def test_pages_over_the_byte_budget_keep_their_feed_text(make_app: Callable[..., App], site: Site) -> None:
    paths = [f"/a/{n}" for n in range(4)]
    site.serve("/feed.xml", teasers(site, paths), "application/rss+xml")
    page = voa_page().replace(b"</body>", b"<!-- " + b"x" * 300_000 + b" --></body>")
    for path in paths:
        site.serve(path, page)
    app = make_app(page_bytes_per_poll=500_000, pages_in_parallel=1)
    assert poll(app).status == "ok"
    skipped = f"{SKIPPED}: over fetch.page_bytes_per_poll (500,000 bytes in one poll)"
    assert [error for _, _, error in stored(app)] == [None, None, skipped, skipped]


def test_many_teasers_linking_to_large_and_slow_pages_stay_within_the_budget(
    make_app: Callable[..., App], site: Site, notifier: RecordingNotifier, tmp_path: Path
) -> None:
    """48 teasers: half link to 8 MB pages (allowed by fetch.max_bytes), half to pages
    that never answer while the poll runs. The poll ends when its time for pages is up,
    with the slow pages still hanging; this process's memory and the database stay
    small (before the budget and caps: 1.2 GB of RSS and 370 MB of database)."""
    paths = [f"/a/{n}" for n in range(48)]
    site.serve("/feed.xml", teasers(site, paths), "application/rss+xml")
    bloat = b"<script>var state = " + b'"x",' * 2_000_000 + b"0;</script>"  # 8 MB of inline script
    large = voa_page().replace(b"</head>", bloat + b"</head>", 1)
    for n, path in enumerate(paths):
        if n % 2:
            site.hold(path, voa_page())
        else:
            site.serve(path, large)
    app = make_app(page_time_per_poll=3, page_max_chars=2_000)
    tracemalloc.start()
    try:
        outcome = poll(app)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not site.release.is_set() and site.waiting >= 1  # slow pages were still hanging
    site.release.set()
    assert outcome.status == "ok"
    rows = stored(app)
    assert len(rows) == 48
    read = [t for _, t, e in rows if e is None]
    assert read and all(len(t) <= 2_000 for t in read)  # capped text, never the page
    skipped = [e for _, _, e in rows if e and e.startswith(SKIPPED)]
    assert len(skipped) >= 24 and len(read) <= 8  # every slow page, and what is over 32 MiB
    assert peak < 160 * 2**20, f"tracemalloc peak {peak / 2**20:.0f} MiB"
    database = Path(app.settings.database.removeprefix("sqlite:///"))
    files = [database, database.with_name(database.name + "-wal")]
    assert sum(f.stat().st_size for f in files if f.exists()) < 4 * 2**20
    assert len(notifier.sent) == len(read)  # the rule's word is only on the pages


# --- the budget alone -----------------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("pages", "size", "seconds", "spent", "elapsed", "reason"),
    [
        (3, 1000, 10.0, 0, 0.0, None),
        (1, 1000, 10.0, 0, 0.0, "over fetch.pages_per_poll (1 pages in one poll)"),
        (3, 1000, 10.0, 1000, 0.0, "over fetch.page_bytes_per_poll (1,000 bytes in one poll)"),
        (3, 1000, 10.0, 0, 10.0, "over fetch.page_time_per_poll (10s for the pages of one poll)"),
    ],
    ids=["admitted", "count", "bytes", "time"],
)
def test_budget_decisions(
    pages: int, size: int, seconds: float, spent: int, elapsed: float, reason: str | None
) -> None:
    ticks = Ticks()
    budget = Budget(pages, size, seconds, ticks)
    assert budget.admit() is None
    budget.spend(spent)
    ticks.now += elapsed
    assert budget.admit() == (None if reason is None else f"{SKIPPED}: {reason}")
    assert budget.left() == seconds - elapsed


def test_a_budget_that_ended_refuses_everything() -> None:
    budget = Budget(10, 10_000, 60.0)
    budget.end()
    assert budget.over
    assert budget.admit() == f"{SKIPPED}: over fetch.page_time_per_poll (1m for the pages of one poll)"


@dataclasses.dataclass
class FakeDeps:
    """The page stage's seams (PageDeps), faked: one page, an extractor that waits out the clock."""

    settings: Any
    ticks: Ticks

    @property
    def fetcher(self) -> FakeDeps:
        return self

    @property
    def extractor(self) -> Callable[..., str]:
        def wait_then_give_up(page: Page, *, wait: float | None = None) -> str:
            self.ticks.now += wait or 0
            raise ExtractError(f"extract: no free extractor within {wait:g}s")

        return wait_then_give_up

    def fetch(self, url: str, *, now: datetime | None = None, origin: str | None = None) -> Fetched:
        return Fetched(url, url, 200, voa_page(), "text/html", None, None, WHEN)


def test_a_page_still_waiting_for_a_worker_when_time_is_up_is_skipped_by_the_budget(
    settings_factory: SettingsFactory,
) -> None:
    ticks = Ticks()
    deps = FakeDeps(settings_factory(), ticks)
    entry = parse(
        Fetched(
            "https://x/feed",
            "https://x/feed",
            200,
            rss_feed("T", "https://x/", [rss_item("Story", "https://x/a", WHEN, "A teaser.")]),
            None,
            None,
            None,
            WHEN,
        )
    ).entries[0]
    budget = Budget(5, 10**6, 20.0, ticks)
    read = read_page(entry, deps, budget, WHEN)
    assert read.page_error == f"{SKIPPED}: over fetch.page_time_per_poll (20s for the pages of one poll)"
