"""parse_pool: parsing in worker processes with a time limit, from many threads at once.

Real processes throughout. The slow parse is a real one, not a stand-in: 30,000 items
take feedparser seconds (its quadratic author regex, issue 562, no longer does: long
runs are cut first, ADR 0022); the helpers below that crash, allocate or raise stand in
for bugs that we hope not to have, and run in the workers like ``parse`` does.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ParseError
from monitor.models import Fetched, ParsedFeed
from monitor.parse import parse
from monitor.parse_pool import ParsePool, RemoteTraceback

DATA = Path(__file__).parent / "data"
URL = "https://news.example.com/feeds/europe.xml"


def fetched(body: bytes) -> Fetched:
    return Fetched(
        url=URL,
        final_url=URL,
        status=200,
        body=body,
        content_type=None,
        etag=None,
        last_modified=None,
        fetched_at=datetime(2024, 5, 31, 18, 0, tzinfo=UTC),
    )


def slow_author_feed(repeats: int = 16_000) -> bytes:
    """feedparser issue 562: its author-email regex backtracks quadratically on
    ``a@a.a.a...a!`` (8,000 labels take about a second; this takes several)."""
    author = "a@" + "a." * repeats + "!"
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>Slow</title><author>{author}</author></item></channel></rss>"
    ).encode()


def large_feed(items: int = 30_000) -> bytes:
    """A valid feed that takes several seconds to parse (about 8 here; 3.4 MB)."""
    body = "".join(
        f"<item><title>Slow {i}</title><guid>g{i}</guid>"
        f"<description>&lt;p&gt;Kharkiv {i}&lt;/p&gt;</description></item>"
        for i in range(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


def explode(fetched: Fetched) -> ParsedFeed:
    raise KeyError("a bug in the parser")


class Unpicklable(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(a)  # args do not match __init__, so it cannot be unpickled


def explode_unpicklably(fetched: Fetched) -> ParsedFeed:
    raise Unpicklable("x", "y")


def die(fetched: Fetched) -> ParsedFeed:
    os._exit(3)


def whoami(fetched: Fetched) -> ParsedFeed:
    return ParsedFeed(title=str(os.getpid()), link=None, entries=())


def hog(fetched: Fetched) -> ParsedFeed:
    bytearray(512 * 1024 * 1024)
    return ParsedFeed(title=None, link=None, entries=())


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    with ParsePool(timeout=20, size=3) as pool:
        yield pool


def test_parses_like_parse_and_starts_lazily(pool: ParsePool) -> None:
    assert pool.started == 0
    body = (DATA / "rss2.xml").read_bytes()
    assert pool.parse(fetched(body)) == parse(fetched(body))
    assert pool.parse(fetched(body)) == parse(fetched(body))
    assert pool.started == 1


def test_a_parse_error_comes_back_as_itself(pool: ParsePool) -> None:
    with pytest.raises(ParseError) as info:
        pool.parse(fetched(b"<html><body>Sign in</body></html>"))
    assert (info.value.url, str(info.value)) == (URL, "parse: not a feed (got an HTML page)")
    assert pool.parse(fetched((DATA / "atom.xml").read_bytes())).entries
    assert pool.started == 1


def test_many_threads_share_the_workers(pool: ParsePool) -> None:
    bodies = [(DATA / name).read_bytes() for name in ("rss2.xml", "atom.xml", "rdf.xml", "latin1.xml")] * 6
    with ThreadPoolExecutor(8) as threads:
        results = list(threads.map(lambda body: pool.parse(fetched(body)), bodies))
    assert results == [parse(fetched(body)) for body in bodies]
    assert 1 <= pool.started <= 3


def test_a_parse_over_the_time_limit_stops_its_worker_and_the_next_one_starts_fresh() -> None:
    with ParsePool(timeout=1, size=1) as pool:
        assert pool.parse(fetched((DATA / "rss2.xml").read_bytes())).entries
        with pytest.raises(ParseError) as info:
            pool.parse(fetched(large_feed()))
        assert str(info.value) == "parse: took longer than 1s (worker stopped)"
        assert info.value.url == URL
        entry = pool.parse(fetched(slow_author_feed(repeats=3))).entries[0]
        assert entry.author == "a@a.a.a.!"
        assert pool.started == 2


def test_a_bug_in_the_parser_is_raised_with_the_workers_traceback() -> None:
    with ParsePool(timeout=20, size=1, function=explode) as pool:
        with pytest.raises(KeyError, match="a bug in the parser") as info:
            pool.parse(fetched(b""))
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert "def explode" not in str(info.value.__cause__)
        assert 'raise KeyError("a bug in the parser")' in str(info.value.__cause__)
        assert pool.started == 1  # the worker is fine: the bug was in the input's handling


def test_an_exception_that_cannot_travel_becomes_a_runtime_error() -> None:
    with (
        ParsePool(timeout=20, size=1, function=explode_unpicklably) as pool,
        pytest.raises(RuntimeError, match=r"Unpicklable\('x'\)"),
    ):
        pool.parse(fetched(b""))


def test_a_worker_that_dies_is_a_parse_error_and_is_replaced() -> None:
    with ParsePool(timeout=20, size=1, function=die) as pool:
        for _ in range(2):
            with pytest.raises(ParseError, match=r"^parse: the parser process died \(exit code 3\)$"):
                pool.parse(fetched(b""))
        assert pool.started == 2


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux) to see the worker die")
def test_a_worker_killed_while_idle_is_replaced_and_no_feed_pays_for_it() -> None:
    """The kernel's OOM killer or an operator may kill an idle worker."""
    with ParsePool(timeout=20, size=1, function=whoami) as pool:
        first = int(pool.parse(fetched(b"")).title or 0)
        exited = os.pidfd_open(first)
        os.kill(first, signal.SIGKILL)
        assert select.select([exited], [], [], 10)[0]  # readable once the process is gone
        os.close(exited)
        second = int(pool.parse(fetched(b"")).title or 0)
    assert second != first
    assert pool.started == 2


def announce_and_hang(fetched: Fetched) -> ParsedFeed:
    """Tell the test (through the FIFO named by the body) that parsing began, then never end."""
    with open(fetched.body, "w") as fifo:
        fifo.write("parsing\n")
    threading.Event().wait()
    raise AssertionError("unreachable")


def test_closing_the_pool_stops_a_parse_in_progress(tmp_path: Path) -> None:
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    pool = ParsePool(timeout=60, size=1, function=announce_and_hang)
    with ThreadPoolExecutor(1) as threads:
        running = threads.submit(pool.parse, fetched(str(fifo).encode()))
        with open(fifo) as started:  # blocks until the worker has the body
            assert started.readline() == "parsing\n"
        pool.close()
        with pytest.raises(ParseError, match=r"^parse: the parser process died \(exit code -9\)$"):
            running.result(timeout=30)
    assert pool.workers == 0


def announce_and_wait(fetched: Fetched) -> ParsedFeed:
    """Answer at once for an empty body; else tell the test that parsing began (FIFO
    ``<body>.started``) and wait until it says go (FIFO ``<body>.go``)."""
    if fetched.body:
        with open(fetched.body + b".started", "w") as fifo:
            fifo.write("parsing\n")
        with open(fetched.body + b".go") as fifo:
            fifo.readline()
    return whoami(fetched)


def test_a_retired_pool_finishes_the_parse_in_flight_and_keeps_no_worker(tmp_path: Path) -> None:
    """A reload that changes the parse settings retires the old pool: its idle workers
    stop at once, a parse in progress finishes and its worker stops, and a late call
    (a poll that began before the reload) is still answered."""
    gate = tmp_path / "gate"
    os.mkfifo(f"{gate}.started")
    os.mkfifo(f"{gate}.go")
    with ParsePool(timeout=60, size=2, function=announce_and_wait) as pool, ThreadPoolExecutor(1) as threads:
        running = threads.submit(pool.parse, fetched(str(gate).encode()))
        with open(f"{gate}.started") as started:  # blocks until the first worker has the body
            assert started.readline() == "parsing\n"
        pool.parse(fetched(b""))  # a second worker, idle after it answers
        assert pool.workers == 2
        pool.retire()
        assert pool.workers == 1  # the idle one stopped; the busy one goes on
        with open(f"{gate}.go", "w") as go:
            go.write("go\n")
        assert running.result(timeout=30).title is not None
        assert pool.workers == 0
        assert pool.parse(fetched(b"")).title is not None  # a late call is answered ...
        assert pool.workers == 0  # ... and leaves no worker behind


def test_a_worker_that_needs_too_much_memory_gets_a_parse_error() -> None:
    with (
        ParsePool(timeout=20, size=1, memory_limit=256 * 1024 * 1024, function=hog) as pool,
        pytest.raises(ParseError, match=r"^parse: ran out of memory \(the parser process is capped\)$"),
    ):
        pool.parse(fetched(b""))


def test_spawn_works_too() -> None:
    body = (DATA / "atom.xml").read_bytes()
    with ParsePool(timeout=20, size=1, start_method="spawn") as pool:
        assert pool.parse(fetched(body)) == parse(fetched(body))


def test_close_stops_the_workers_and_refuses_more_work() -> None:
    pool = ParsePool(timeout=20, size=2)
    body = (DATA / "rss2.xml").read_bytes()
    with ThreadPoolExecutor(2) as threads:
        list(threads.map(lambda _: pool.parse(fetched(body)), range(4)))
    assert pool.workers >= 1
    pool.close()
    assert pool.workers == 0
    with pytest.raises(RuntimeError, match="closed"):
        pool.parse(fetched(body))
    pool.close()  # twice is fine


@pytest.mark.parametrize(("timeout", "size"), [(0, 1), (1, 0)])
def test_nonsense_limits_are_refused(timeout: float, size: int) -> None:
    with pytest.raises(ValueError):
        ParsePool(timeout=timeout, size=size)


_POOL_SIZES = """
import json, os, sys
from monitor.config import Settings
from monitor.extract_pool import ExtractPool
from monitor.parse_pool import ParsePool
from monitor.workers import usable_cpus
cpus = json.loads(sys.argv[1])
if cpus:
    os.sched_setaffinity(0, cpus)
settings = Settings.model_validate(
    {"channels": {"hook": "json://127.0.0.1:9/never"}, "feeds": [], "rules": [], "poll": {"concurrency": 32}}
)
sizes = [usable_cpus(), ParsePool.for_settings(settings).size, ExtractPool.for_settings(settings).size]
print(json.dumps(sizes))
"""


def _pool_sizes(cpus: list[int]) -> list[int]:
    """(usable CPUs, parse workers, page workers) of a fresh process limited to ``cpus``."""
    done = subprocess.run(
        [sys.executable, "-c", _POOL_SIZES, json.dumps(cpus)], capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_default_pools_follow_the_cpus_the_process_may_use() -> None:
    """One parser and one page worker per CPU the process may use, at least two of each:
    a process pinned to one CPU (a container's cpuset, ``taskset``) counts one, not the
    machine's (``os.cpu_count`` counts every CPU of the host)."""
    mine = sorted(os.sched_getaffinity(0))
    usable, parsers, pages = _pool_sizes([])
    assert (usable, parsers, pages) == (len(mine), max(2, len(mine)), max(2, len(mine)))
    assert _pool_sizes(mine[:1]) == [1, 2, 2]
