"""Hostile and broken feeds, end to end.

Every case is served by a real loopback server (a threaded stdlib HTTP server, or a
raw socket where HTTP itself is the weapon) and polled through the real pipeline
(``App.run_once``, strict, parsing in the worker pool) in the same cycle as a good
feed. Each asserts:

- the outcome: the hostile feed's error recorded on its row, or what a best-effort
  parse stored and alerted;
- the good feed still alerted (other feeds are unaffected);
- the cycle finished within its configured limits (fetch deadline + parse timeout)
  plus ``SLACK``: a correctness bound, not a benchmark;
- memory: tracemalloc's peak in this process during the cycle stayed under
  ``MEMORY`` (4 MiB: four times the 1 MiB body cap). That covers fetching, the
  pipeline and the test servers, which run in this process too; the 10,000-entry
  case bounds the growth of peak RSS instead, at 64 MiB (see there). Parsing runs in
  worker processes, which tracemalloc does not see: their address space is capped
  (``parse_pool``), and test_parse.py checks in-process that entity declarations are
  refused before anything expands.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import resource
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.app import App
from monitor.config import FetchSettings
from monitor.errors import FetchError
from monitor.fetch import Fetcher
from monitor.language import LANGUAGES
from monitor.models import Alert, FeedStatus, Fetched
from monitor.samples import rss_feed, rss_item
from monitor.store import Store
from monitor.stories import lexicon
from tests.conftest import Clock, RecordingNotifier, SettingsFactory
from tests.netseams import PRIVATE_IP, PUBLIC_IP, Resolver, Server, pretend_public, server_pair
from tests.test_parse_pool import large_feed

DATA = Path(__file__).parent / "data"
GOOD, HOSTILE = "Good", "Hostile"
CAP = 1024 * 1024
LIMITS = {"deadline": 1.5, "read_timeout": 1, "connect_timeout": 1, "max_bytes": CAP, "parse_timeout": 5}
SLACK = 2.0  # seconds on top of the configured limits, for a loaded test machine
MEMORY = 4 * CAP  # a few copies of a capped body, never an expansion
WHEN = datetime(2024, 5, 31, 17, 0, tzinfo=UTC)


# --- servers --------------------------------------------------------------------------

Route = Callable[[BaseHTTPRequestHandler], None]


WATCH = {"name": "watch", "any": ["prisoner exchange", "Kharkiv"], "notify": ["hook"], "stories": "each"}
"""One alert per article: these feeds' entries look alike and would fold into one story."""


class FeedServer:
    """A threaded stdlib HTTP server on 127.0.0.1 with a route table and a request log.

    Not pytest-httpserver here: werkzeug reads up to 10 MB into a fresh buffer after
    every response (to drain the socket), which would swamp this process's tracemalloc
    peak with the test server's memory, not monitor's.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[str] = []
        routes, log = self.routes, self.log

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                log.append(self.path)
                route = routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                with contextlib.suppress(OSError):  # the client hung up, as capped fetches do
                    route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def reset(self) -> None:
        self.routes.clear()
        self.log.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def body(data: bytes, content_type: str = "application/rss+xml", status: int = 200, **headers: str) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.end_headers()
        h.wfile.write(data)

    return route


def redirect(location: str, status: int = 302) -> Route:
    return body(b"", status=status, Location=location)


def stream(chunk: bytes, count: int) -> Route:
    """A body with no Content-Length (HTTP/1.0: the end is when the server closes)."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.end_headers()
        for _ in range(count):
            h.wfile.write(chunk)

    return route


@pytest.fixture(scope="module")
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def feeds(feed_server: FeedServer) -> Iterator[FeedServer]:
    feed_server.reset()
    good = rss_feed(
        "Good desk",
        "https://good.example.com/",
        [rss_item("Kyiv and Moscow agree prisoner exchange", "https://good.example.com/1", WHEN, "75 home.")],
    )
    feed_server.routes["/good.xml"] = body(good)
    yield feed_server
    feed_server.reset()


@contextmanager
def drip_server(head: bytes) -> Iterator[str]:
    """A raw HTTP server that sends ``head``, then one byte every 0.2 s until the client leaves."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def drip(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(head)
                while not stop.wait(0.2):  # the server's own pace
                    conn.sendall(b"x")
            except OSError:
                pass  # the client gave up, as it should

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
    finally:
        stop.set()
        with contextlib.suppress(OSError):  # wakes accept() on Linux; not needed elsewhere
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)


# --- one cycle ------------------------------------------------------------------------


@dataclass
class Cycle:
    statuses: dict[str, FeedStatus]
    alerts: dict[str, list[Alert]]
    elapsed: float
    peak: int

    def error(self, feed: str = HOSTILE) -> str | None:
        return self.statuses[feed].last_error


AppFactory = Callable[..., App]


@pytest.fixture
def make_app(
    settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock, feeds: FeedServer
) -> Iterator[AppFactory]:
    apps: list[App] = []

    def make(hostile_url: str, *, net: Resolver | None = None, **limits: Any) -> App:
        """The app; with ``net``, its fetcher resolves through that table and counts
        127.0.0.2 as public (``tests.netseams``)."""
        settings = settings_factory(
            fetch={**LIMITS, **limits},
            feeds=[
                {"name": GOOD, "url": feeds.url("/good.xml"), "full_text": "never"},
                {"name": HOSTILE, "url": hostile_url, "full_text": "never"},
            ],
            rules=[WATCH],
        )
        if net is None:
            app = App.from_settings(settings, clock=clock, notifier=notifier, strict=True)
        else:
            fetcher = Fetcher(settings.fetch, resolver=net, policy=pretend_public)
            app = App(settings, Store.open(settings.database), fetcher, notifier, clock=clock, strict=True)
        _fill_word_tables(app)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def _fill_word_tables(app: App) -> None:
    """Story assignment reads a word-frequency table once per language per process (a few
    MB): fill them before a cycle is measured, so the memory bound sees the cycle's own use."""
    for language in LANGUAGES:
        lexicon(app.story_stats.zipf_table(language))


def run_cycle(app: App, notifier: RecordingNotifier, *, trace: bool = True) -> Cycle:
    """One ``run_once``, timed; ``peak`` from tracemalloc, or (``trace=False``) how far
    the cycle raised this process's high-water mark of resident memory."""
    already = len(notifier.sent)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if trace:
        tracemalloc.start()
    started = time.monotonic()
    try:
        app.run_once()
        elapsed = time.monotonic() - started
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    finally:
        tracemalloc.stop()
    alerts: dict[str, list[Alert]] = {}
    for alert in notifier.sent[already:]:
        alerts.setdefault(alert.feed, []).append(alert)
    return Cycle({s.name: s for s in app.store.feed_statuses()}, alerts, elapsed, peak)


def assert_bounded(cycle: Cycle, app: App, *, memory: int = MEMORY, work: float = 0.0) -> None:
    """Within the configured limits (plus ``work`` the case is known to need, plus slack)
    and the memory bound; and the good feed unaffected."""
    fetch = app.settings.fetch
    limit = fetch.deadline.total_seconds() + fetch.parse_timeout.total_seconds() + work + SLACK
    assert cycle.elapsed < limit, f"cycle took {cycle.elapsed:.1f}s, limit {limit:g}s"
    assert cycle.peak < memory, f"tracemalloc peak {cycle.peak / 2**20:.1f} MiB"
    assert cycle.error(GOOD) is None
    assert [a.title for a in cycle.alerts.get(GOOD, [])] == ["Kyiv and Moscow agree prisoner exchange"]


# --- what the hostile server sends ----------------------------------------------------


def items(*titles: str) -> bytes:
    return rss_feed(
        "Hostile desk",
        "https://hostile.example.com/",
        [rss_item(t, f"https://hostile.example.com/{i}", WHEN, f"{t}.") for i, t in enumerate(titles)],
    )


def xml(prolog: str, title: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n{prolog}\n<rss version="2.0"><channel><title>T</title>'
        f"<item><title>{title}</title><guid>g</guid></item></channel></rss>"
    ).encode()


LAUGHS = (
    '<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + ("" if i == 1 else str(i - 1)) + ";") * 10}">\n' for i in range(1, 10)
    )
    + "]>"
)
REFUSED = "(entities that expand to more than one character, or load files or URLs, are not allowed)"

ERROR_CASES = [
    (
        "html-page",
        body((DATA / "html-page.html").read_bytes(), "text/html; charset=utf-8"),
        "parse: not a feed (got an HTML page)",
    ),
    ("empty-body", body(b""), "parse: empty body"),
    ("billion-laughs", body(xml(LAUGHS, "&lol9;")), f"parse: refused XML entity declaration 'lol' {REFUSED}"),
    (
        "xxe-file",
        body(xml('<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")),
        f"parse: refused XML entity declaration 'xxe' {REFUSED}",
    ),
    (
        "gzip-bomb",
        body(gzip.compress(b"\0" * 50 * CAP, 9), Content_Encoding="gzip"),
        f"fetch: body is over the {CAP}-byte cap",
    ),
    (
        "over-cap-declared",
        body(b"<" * (2 * CAP)),
        f"fetch: body of {2 * CAP} bytes is over the {CAP}-byte cap",
    ),
    ("over-cap-streamed", stream(b"<" * 65536, 32), f"fetch: body is over the {CAP}-byte cap"),
    ("redirect-loop", redirect("/hostile"), "fetch: more than 10 redirects"),
]


@pytest.mark.parametrize(("route", "error"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_hostile_bodies_become_feed_errors(
    make_app: AppFactory, feeds: FeedServer, notifier: RecordingNotifier, route: Route, error: str
) -> None:
    feeds.routes["/hostile"] = route
    app = make_app(feeds.url("/hostile"))
    cycle = run_cycle(app, notifier)
    assert cycle.error() == error
    assert HOSTILE not in cycle.alerts
    assert_bounded(cycle, app)


def test_an_external_entity_url_is_never_requested(
    make_app: AppFactory, feeds: FeedServer, notifier: RecordingNotifier
) -> None:
    feeds.routes["/secret"] = body(b"<!ENTITY leak 'PWNED'>", "text/plain")
    prolog = f'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{feeds.url("/secret")}">\n]>'
    feeds.routes["/hostile"] = body(xml(prolog, "&xxe;"))
    app = make_app(feeds.url("/hostile"))
    cycle = run_cycle(app, notifier)
    assert cycle.error() == f"parse: refused XML entity declaration 'xxe' {REFUSED}"
    assert sorted(feeds.log) == ["/good.xml", "/hostile"]
    assert_bounded(cycle, app)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n<rss>",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nX-Drip: ",
    ],
    ids=["drips-its-body", "drips-its-headers"],
)
def test_a_server_that_drips_bytes_forever_is_cut_off_at_the_deadline(
    make_app: AppFactory, notifier: RecordingNotifier, head: bytes
) -> None:
    """Each byte comes well within the 1 s read timeout; only the 1.5 s deadline ends it."""
    with drip_server(head) as url:
        app = make_app(url)
        cycle = run_cycle(app, notifier)
    assert cycle.error() == "fetch: took longer than 1.5s"
    assert cycle.elapsed < LIMITS["deadline"] + SLACK
    assert_bounded(cycle, app)


def _cp1252_feed() -> bytes:
    title = "Kharkiv rebuild to cost “€50bn” – officials"
    feed = rss_feed(
        "Desk", "https://hostile.example.com/", [rss_item(title, "https://hostile.example.com/1", WHEN, "C.")]
    )
    return feed.decode().encode("cp1252")


_THREE = items("Kharkiv: Biden outlines plan", "Kharkiv: crossing closed", "Kharkiv: election date set")
TRUNCATED = _THREE[: _THREE.index(b"election date") + 8]
NO_IDS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<item><title>Kharkiv: shelling overnight</title><description>Residents sheltered.</description></item>"
    b"<item><description>Kharkiv metro used as shelter again.</description></item>"
    b"</channel></rss>"
)
SHARED_GUIDS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b'<item><title>Kharkiv: first story</title><guid isPermaLink="false">same</guid></item>'
    b'<item><title>Kharkiv: second story</title><guid isPermaLink="false">same</guid></item>'
    b'<item><title>Kharkiv: first story</title><guid isPermaLink="false">same</guid></item>'
    b"</channel></rss>"
)
FUTURE = rss_feed(
    "Desk",
    "https://hostile.example.com/",
    [
        rss_item(
            "Kharkiv: dated 2099", "https://hostile.example.com/f", datetime(2099, 1, 1, tzinfo=UTC), "Later."
        )
    ],
)
LATIN1 = (
    '<?xml version="1.0" encoding="ISO-8859-1"?><rss version="2.0"><channel><title>T</title>'
    "<item><title>Kharkiv talks in Zürich</title><guid>z</guid></item></channel></rss>"
).encode("iso-8859-1")
JSON_11 = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [{"id": "j1", "title": "Kharkiv in JSON 1.1", "date_published": "2024-05-31T16:00:00Z"}],
    }
).encode()
JSON_10 = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1",
        "title": "J",
        "items": [{"id": 7, "title": "Kharkiv in JSON 1.0", "content_text": "Text."}],
    }
).encode()

# id, body, Content-Type, alerts as (title, dated), articles stored
BEST_EFFORT = [
    (
        "truncated-xml",
        TRUNCATED,
        "application/rss+xml",
        [("Kharkiv: Biden outlines plan", True), ("Kharkiv: crossing closed", True)],
        2,
    ),
    ("latin-1", LATIN1, "application/rss+xml", [("Kharkiv talks in Zürich", False)], 1),
    (
        "mislabelled-cp1252",
        _cp1252_feed(),
        "application/rss+xml; charset=utf-8",
        [("Kharkiv rebuild to cost “€50bn” – officials", True)],
        1,
    ),
    (
        "no-guid-link-or-date",
        NO_IDS,
        "application/rss+xml",
        [("Kharkiv: shelling overnight", False), ("", False)],
        2,
    ),
    (
        "duplicate-guids",
        SHARED_GUIDS,
        "application/rss+xml",
        [("Kharkiv: first story", False), ("Kharkiv: second story", False)],
        2,
    ),
    ("future-date", FUTURE, "application/rss+xml", [("Kharkiv: dated 2099", True)], 1),
    ("json-feed-1.1", JSON_11, "application/feed+json", [("Kharkiv in JSON 1.1", True)], 1),
    ("json-feed-1.0", JSON_10, "application/json", [("Kharkiv in JSON 1.0", False)], 1),
]


@pytest.mark.parametrize(
    ("data", "content_type", "expected", "stored"),
    [c[1:] for c in BEST_EFFORT],
    ids=[c[0] for c in BEST_EFFORT],
)
def test_broken_but_readable_feeds_are_parsed_best_effort(
    make_app: AppFactory,
    feeds: FeedServer,
    notifier: RecordingNotifier,
    clock: Clock,
    data: bytes,
    content_type: str,
    expected: list[tuple[str, bool]],
    stored: int,
) -> None:
    """Undated entries, and dates after the fetch, take the fetch time (``clock.now``)."""
    feeds.routes["/hostile"] = body(data, content_type)
    app = make_app(feeds.url("/hostile"))
    cycle = run_cycle(app, notifier)
    assert cycle.error() is None
    assert cycle.statuses[HOSTILE].articles == stored
    alerts = sorted(cycle.alerts[HOSTILE], key=lambda a: a.title)
    assert [a.title for a in alerts] == sorted(title for title, _ in expected)
    for alert, (_, dated) in zip(alerts, sorted(expected), strict=True):
        assert alert.published <= clock.now
        if not dated:
            assert alert.published == clock.now
    assert_bounded(cycle, app)


# --- issue 10: input that used to stop a feed for good (an exception other than FeedError
# on every poll: nothing stored, no error recorded, the same crash next cycle) ----------

_ONE = items("Kharkiv: one story")
WEEK = timedelta(days=7)


def _year_one(feed: bytes) -> bytes:
    dated = b"<pubDate>Fri, 31 May 2024 17:00:00 +0000</pubDate>"
    assert dated in feed
    return feed.replace(dated, b"<pubDate>Mon, 01 Jan 0001 00:00:00 +0100</pubDate>")


# id, route, error recorded (None: the feed is read), alert titles
NEVER_STOP = [
    (
        "ttl-superscript",
        body(_ONE.replace(b"<channel>", b"<channel><ttl>\xc2\xb2</ttl>")),
        None,
        ["Kharkiv: one story"],
    ),
    ("max-age-huge", body(_ONE, Cache_Control="max-age=99999999999999"), None, ["Kharkiv: one story"]),
    (
        "retry-after-huge",
        body(b"busy", "text/plain", 503, Retry_After="999999999999"),
        "fetch: HTTP 503 Service Unavailable",
        [],
    ),
    (
        "lone-surrogate-title",
        body(items("Kharkiv: SURROGATE").replace(b"SURROGATE", b"&#xD800;")),
        None,
        ["Kharkiv: \ufffd"],
    ),
    (
        "utf-16be-bom-as-utf-16",
        body(b"\xfe\xff" + _ONE.decode().encode("utf-16-be"), "application/rss+xml; charset=utf-16"),
        None,
        ["Kharkiv: one story"],
    ),
    (
        "year-1-date",
        body(_year_one(_ONE)),
        None,
        ["Kharkiv: one story"],
    ),
]


@pytest.mark.parametrize(
    ("route", "error", "alerts"), [c[1:] for c in NEVER_STOP], ids=[c[0] for c in NEVER_STOP]
)
def test_numbers_text_and_encodings_that_used_to_stop_a_feed(
    make_app: AppFactory,
    feeds: FeedServer,
    notifier: RecordingNotifier,
    clock: Clock,
    route: Route,
    error: str | None,
    alerts: list[str],
) -> None:
    feeds.routes["/hostile"] = route
    app = make_app(feeds.url("/hostile"))
    cycle = run_cycle(app, notifier)
    assert cycle.error() == error
    assert [a.title for a in cycle.alerts.get(HOSTILE, [])] == alerts
    next_poll = cycle.statuses[HOSTILE].next_poll_at
    assert next_poll is not None and next_poll <= clock.now + WEEK
    assert_bounded(cycle, app)


def test_a_feed_giving_every_entry_one_guid_still_alerts_each_new_story(
    make_app: AppFactory, feeds: FeedServer, notifier: RecordingNotifier, clock: Clock
) -> None:
    """The new story arrives first and used to take the key the old one was stored under."""

    def feed(*titles: str) -> bytes:
        entries = [rss_item(t, f"https://hostile.example.com/{t[-1]}", WHEN, t, guid="same") for t in titles]
        return rss_feed("Same guid", "https://hostile.example.com/", entries)

    feeds.routes["/hostile"] = body(feed("Kharkiv: story A"))
    app = make_app(feeds.url("/hostile"))
    assert [a.title for a in run_cycle(app, notifier).alerts[HOSTILE]] == ["Kharkiv: story A"]
    feeds.routes["/hostile"] = body(feed("Kharkiv: story B", "Kharkiv: story A"))
    clock.advance(timedelta(hours=7))
    second = run_cycle(app, notifier)
    assert "Kharkiv: story B" in [a.title for a in second.alerts[HOSTILE]]
    assert second.error() is None


@pytest.mark.parametrize(
    "validators",
    [
        {"ETag": '"caf\xe9"'},
        {"Last_Modified": "Fri, 31 May 2024 17:00:00 GMT\xe9"},
        {"ETag": '"' + "e" * 5000 + '"'},
    ],
    ids=["etag-latin-1", "last-modified-latin-1", "etag-huge"],
)
def test_validators_that_cannot_be_sent_back_never_stop_a_feed(
    make_app: AppFactory,
    feeds: FeedServer,
    notifier: RecordingNotifier,
    clock: Clock,
    validators: dict[str, str],
) -> None:
    """A server's ``ETag: "café"`` was kept and sent back in If-None-Match, which an HTTP
    client encodes as ASCII: every later poll of the feed raised UnicodeEncodeError."""

    def feed(*titles: str) -> bytes:
        entries = [rss_item(t, f"https://hostile.example.com/{t[-1]}", WHEN, t) for t in titles]
        return rss_feed("Odd validators", "https://hostile.example.com/", entries)

    feeds.routes["/hostile"] = body(feed("Kharkiv: story A"), "application/rss+xml", 200, **validators)
    app = make_app(feeds.url("/hostile"))
    assert [a.title for a in run_cycle(app, notifier).alerts[HOSTILE]] == ["Kharkiv: story A"]
    feeds.routes["/hostile"] = body(
        feed("Kharkiv: story B", "Kharkiv: story A"), "application/rss+xml", 200, **validators
    )
    clock.advance(timedelta(hours=7))
    second = run_cycle(app, notifier)
    assert second.error() is None
    assert [a.title for a in second.alerts[HOSTILE]] == ["Kharkiv: story B"]


def test_an_entry_whose_link_cannot_be_fetched_is_stored_and_alerted(
    settings_factory: SettingsFactory, feeds: FeedServer, notifier: RecordingNotifier, clock: Clock
) -> None:
    """``http://a..b/x`` raised UnicodeError (IDNA) out of the page fetch: the poll died."""
    feeds.routes["/hostile"] = body(
        rss_feed(
            "Odd",
            "https://hostile.example.com/",
            [rss_item("Kharkiv: odd link", "http://a..b/x", WHEN, "Short.")],
        )
    )
    settings = settings_factory(
        fetch=LIMITS,
        feeds=[{"name": HOSTILE, "url": feeds.url("/hostile"), "full_text": "always"}],
        rules=[{"name": "watch", "any": ["Kharkiv"], "notify": ["hook"]}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        cycle = run_cycle(app, notifier, trace=False)
        _, batches = app.store.read_articles()
        [[article]] = list(batches)
    assert cycle.error() is None
    assert [a.title for a in cycle.alerts[HOSTILE]] == ["Kharkiv: odd link"]
    assert article.entry.page_error is not None
    assert article.entry.page_error.startswith("fetch: not a valid http(s) URL: 'http://a..b/x'")


def test_ten_thousand_entries_are_stored_in_one_poll(
    make_app: AppFactory, feeds: FeedServer, notifier: RecordingNotifier
) -> None:
    entries = [
        rss_item(f"Story {i}", f"https://hostile.example.com/{i}", WHEN, f"Item {i}.") for i in range(10_000)
    ]
    entries[5000] = rss_item(
        "Kharkiv: the one that matters", "https://hostile.example.com/k", WHEN, "Read it."
    )
    data = rss_feed("Big desk", "https://hostile.example.com/", entries)
    assert 2 * CAP < len(data) < 4 * CAP
    feeds.routes["/hostile"] = body(data)
    app = make_app(feeds.url("/hostile"), max_bytes=4 * CAP, parse_timeout=20)
    # Not tracemalloc here: it doubles the 5 s that storing 10,000 rows takes (SQLAlchemy
    # compiling multi-row INSERTs). The growth of peak RSS bounds the cycle's memory too.
    cycle = run_cycle(app, notifier, trace=False)
    assert cycle.error() is None
    assert cycle.statuses[HOSTILE].articles == 10_000
    assert [a.title for a in cycle.alerts[HOSTILE]] == ["Kharkiv: the one that matters"]
    # Storing 10,000 rows takes seconds of its own, which no fetch or parse limit covers.
    assert_bounded(cycle, app, memory=64 * 1024 * 1024, work=15)


def test_a_parse_that_takes_too_long_is_stopped_and_its_worker_replaced(
    make_app: AppFactory, feeds: FeedServer, notifier: RecordingNotifier
) -> None:
    feeds.routes["/hostile"] = body(large_feed())  # a real parse of several seconds
    app = make_app(feeds.url("/hostile"), parse_timeout=1, max_bytes=8 * 1024 * 1024)
    cycle = run_cycle(app, notifier)
    assert cycle.error() == "parse: took longer than 1s (worker stopped)"
    assert_bounded(cycle, app, memory=16 * 1024 * 1024)  # the 3.4 MB body, held and sent once
    pool = app.parse_pool
    assert pool.workers == pool.started - 1  # the slow one was killed; any other is still up

    feeds.routes["/hostile"] = body(items("Kharkiv: back to normal"))
    again = run_cycle(app, notifier)
    assert again.error() is None
    assert [a.title for a in again.alerts[HOSTILE]] == ["Kharkiv: back to normal"]
    assert pool.workers >= 1


# --- redirects into private addresses ------------------------------------------------


def test_a_public_feed_redirected_to_loopback_is_refused(
    make_app: AppFactory, feeds: FeedServer, notifier: RecordingNotifier
) -> None:
    """news.test resolves to 127.0.0.2 (public, to the test policy) and redirects to the
    private feed server; the redirect is refused where the connection would be opened.
    (tests/test_addresses.py has the address policy case by case.)"""
    public = Server(PUBLIC_IP)
    try:
        internal = feeds.url("/internal")
        feeds.routes["/internal"] = body(items("Kharkiv: internal"))
        public.routes["/feed.xml"] = redirect(internal)
        net = Resolver()
        net.always("news.test", PUBLIC_IP)
        app = make_app(f"http://news.test:{public.port}/feed.xml", net=net)
        cycle = run_cycle(app, notifier)
    finally:
        public.close()
    assert cycle.error() == f"fetch: connection to a non-public address refused: {internal} (127.0.0.1)"
    assert feeds.log == ["/good.xml"]
    assert_bounded(cycle, app)


def test_a_feed_that_moved_keeps_the_trust_of_its_configured_address(
    make_app: AppFactory, notifier: RecordingNotifier
) -> None:
    """A public feed moves permanently to a host its publisher controls; after a restart
    that host answers with a private address. The moved address is fetched on the
    configured one's behalf, so it stays public and may not reach the private server
    (as the new origin it was "an intranet feed" and was read, and its article links
    could go anywhere)."""
    public, private = server_pair()
    try:
        public.routes["/feed.xml"] = redirect(f"http://moved.test:{public.port}/new.xml", 301)
        public.routes["/new.xml"] = body(items("Kharkiv: moved"))
        private.routes["/new.xml"] = body(items("Kharkiv: internal"))
        net = Resolver()
        net.always("news.test", PUBLIC_IP)
        net.always("moved.test", PUBLIC_IP)
        app = make_app(f"http://news.test:{public.port}/feed.xml", net=net)
        first = run_cycle(app, notifier)
        assert first.error() is None
        assert [a.title for a in first.alerts[HOSTILE]] == ["Kharkiv: moved"]
        app.close()

        net.always("moved.test", PRIVATE_IP)  # the publisher's DNS, after the restart
        restarted = make_app(f"http://news.test:{public.port}/feed.xml", net=net)
        again = run_cycle(restarted, notifier)
    finally:
        public.close()
        private.close()
    moved = f"http://moved.test:{public.port}/new.xml"
    assert again.error() == f"fetch: connection to a non-public address refused: {moved} (127.0.0.1)"
    assert private.paths == []
    assert HOSTILE not in again.alerts


def test_a_feed_once_public_stays_public_after_a_restart(
    make_app: AppFactory, notifier: RecordingNotifier
) -> None:
    """The publisher of a configured public feed answers with a private address once the
    daemon restarts (the Fetcher's memory of public origins is per process). The store
    remembers that the feed was public, so the fetch is refused; it was an intranet
    feed then, read from the private address, its article links free to go anywhere."""
    public, private = server_pair()
    try:
        public.routes["/feed.xml"] = body(items("Kharkiv: public"))
        private.routes["/feed.xml"] = body(items("Kharkiv: internal"))
        net = Resolver()
        net.always("news.test", PUBLIC_IP)
        url = f"http://news.test:{public.port}/feed.xml"
        first = run_cycle(make_app(url, net=net), notifier)
        assert first.error() is None
        assert [a.title for a in first.alerts[HOSTILE]] == ["Kharkiv: public"]

        net.always("news.test", PRIVATE_IP)
        again = run_cycle(make_app(url, net=net), notifier)
    finally:
        public.close()
        private.close()
    assert again.error() == f"fetch: connection to a non-public address refused: {url} (127.0.0.1)"
    assert private.paths == []


def test_a_feed_configured_on_loopback_may_redirect_anywhere(
    make_app: AppFactory, feeds: FeedServer, notifier: RecordingNotifier
) -> None:
    feeds.routes["/hostile"] = redirect(feeds.url("/moved").replace("127.0.0.1", "localhost"))
    feeds.routes["/moved"] = body(items("Kharkiv: moved"))
    app = make_app(feeds.url("/hostile"))
    cycle = run_cycle(app, notifier)
    assert cycle.error() is None
    assert [a.title for a in cycle.alerts[HOSTILE]] == ["Kharkiv: moved"]
    assert_bounded(cycle, app)


def test_an_article_link_from_a_public_feed_is_a_hop_from_that_feed(feeds: FeedServer) -> None:
    """``origin=``: a link found in a public feed may not point at a private address."""
    feeds.routes["/page"] = body(b"<html>secret</html>", "text/html")
    with Fetcher(FetchSettings()) as fetcher:
        with pytest.raises(FetchError, match="connection to a non-public address refused"):
            fetcher.fetch(feeds.url("/page"), origin="http://9.9.9.9/feed.xml")
        assert isinstance(fetcher.fetch(feeds.url("/page")), Fetched)  # configured: allowed
    assert feeds.log == ["/page"]


def test_the_deadline_does_not_outlive_its_fetch(feeds: FeedServer) -> None:
    """After a fetch hits its deadline, the same thread's next fetch gets a whole one."""
    settings = FetchSettings.model_validate({**LIMITS, "deadline": 0.5})
    with drip_server(b"HTTP/1.1 200 OK\r\nX-Drip: ") as url, Fetcher(settings) as fetcher:
        with pytest.raises(FetchError, match=r"^fetch: took longer than 0.5s$"):
            fetcher.fetch(url)
        assert isinstance(fetcher.fetch(feeds.url("/good.xml")), Fetched)


def test_a_tls_handshake_that_never_finishes_is_cut_off_at_the_deadline() -> None:
    """The server reads the ClientHello and dribbles a byte every 0.2 s; the handshake gets
    only what is left of the deadline, not the 5 s connect timeout."""
    settings = FetchSettings.model_validate({**LIMITS, "deadline": 0.5, "connect_timeout": 5})
    with drip_server(b"") as url, Fetcher(settings) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"^fetch: took longer than 0.5s$"):
            fetcher.fetch(url.replace("http://", "https://"))
        assert time.monotonic() - started < 0.5 + SLACK
