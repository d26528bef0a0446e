"""extract_pool: article pages extracted in worker processes that may crash, hang or
bloat without harming the caller.

Real processes throughout. The helpers below stand in for the native crashes, endless
loops and allocations that trafilatura and lxml have shown on real pages (upstream
#840, #925); they run in the workers exactly like ``extract_page`` does, and behave
only on a page carrying their marker, so the pages around them are real extractions.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from monitor.errors import ExtractError
from monitor.extract import Page, extract_page
from monitor.extract_pool import ExtractPool
from monitor.samples import voa_page
from monitor.workers import RemoteTraceback
from tests.corpora import corpus

URL = "https://www.voanews.com/a/nato-leader.html"
MARKER = b"<!-- marker -->"


def page(body: bytes = b"") -> Page:
    return Page(URL, body or voa_page())


def marked() -> Page:
    return page(voa_page().replace(b"<body>", b"<body>" + MARKER, 1))


def segfault_on_marker(page: Page) -> str:
    """A native crash, as lxml under trafilatura has had: the process dies by SIGSEGV."""
    if MARKER in page.body:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file in the test's directory
        os.kill(os.getpid(), signal.SIGSEGV)
    return extract_page(page)


def hang_on_marker(page: Page) -> str:
    if MARKER in page.body:
        threading.Event().wait()
    return extract_page(page)


def hog_on_marker(page: Page) -> str:
    if MARKER in page.body:
        bytearray(512 * 1024 * 1024)
    return extract_page(page)


def refuse_on_marker(page: Page) -> str:
    if MARKER in page.body:
        raise ExtractError("extract: trafilatura failed (ValueError: odd page)")
    return extract_page(page)


def bug_on_marker(page: Page) -> str:
    if MARKER in page.body:
        raise KeyError("a bug in our own code")
    return extract_page(page)


def announce_and_hang(page: Page) -> str:
    """Tell the test (through the FIFO named by the URL) that extraction began, then never end."""
    with open(page.url, "w") as fifo:
        fifo.write("extracting\n")
    threading.Event().wait()
    raise AssertionError("unreachable")


@pytest.fixture
def text() -> str:
    return extract_page(page())


def test_extracts_like_extract_page_and_starts_lazily(text: str) -> None:
    with ExtractPool(timeout=30, size=2) as pool:
        assert pool.started == 0
        assert pool.extract(page()) == text
        assert pool.extract(page()) == text
        assert pool.started == 1
    assert "prisoner exchange" in text and "ATACMS" in text


def test_a_worker_killed_by_a_signal_is_one_pages_error_and_is_replaced(text: str) -> None:
    with ExtractPool(timeout=30, size=1, function=segfault_on_marker) as pool:
        assert pool.extract(page()) == text
        with pytest.raises(ExtractError, match=r"^extract: the extractor process died \(exit code -11\)$"):
            pool.extract(marked())
        assert pool.extract(page()) == text
        assert pool.started == 2


def test_a_native_crash_leaves_the_other_pages_of_many_threads_alone(text: str) -> None:
    pages = [marked() if n % 4 == 1 else page() for n in range(12)]

    def one(p: Page) -> str:
        try:
            return pool.extract(p)
        except ExtractError as e:
            return str(e)

    pool = ExtractPool(timeout=30, size=2, function=segfault_on_marker)
    with pool, ThreadPoolExecutor(4) as threads:
        results = list(threads.map(one, pages))
    died = "extract: the extractor process died (exit code -11)"
    assert results == [died if n % 4 == 1 else text for n in range(12)]
    assert pool.started >= 3  # every crash cost one worker, and only that one


def test_a_page_over_the_time_limit_stops_its_worker(text: str) -> None:
    with ExtractPool(timeout=1, size=1, function=hang_on_marker) as pool:
        with pytest.raises(ExtractError, match=r"^extract: took longer than 1s \(worker stopped\)$"):
            pool.extract(marked())
        assert pool.extract(page()) == text
        assert pool.started == 2


def test_a_page_that_needs_too_much_memory_gets_an_error_and_a_fresh_worker(text: str) -> None:
    with ExtractPool(timeout=30, size=1, memory_limit=256 * 1024 * 1024, function=hog_on_marker) as pool:
        assert pool.extract(page()) == text
        capped = r"^extract: ran out of memory \(the extractor process is capped\)$"
        with pytest.raises(ExtractError, match=capped):
            pool.extract(marked())
        assert pool.extract(page()) == text
        assert pool.started == 2


def test_an_extraction_error_comes_back_as_itself_and_keeps_the_worker() -> None:
    with ExtractPool(timeout=30, size=1, function=refuse_on_marker) as pool:
        with pytest.raises(ExtractError, match=r"^extract: trafilatura failed \(ValueError: odd page\)$"):
            pool.extract(marked())
        assert pool.extract(page())
        assert pool.started == 1


def test_a_bug_is_raised_with_the_workers_traceback() -> None:
    with ExtractPool(timeout=30, size=1, function=bug_on_marker) as pool:
        with pytest.raises(KeyError, match="a bug in our own code") as info:
            pool.extract(marked())
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert 'raise KeyError("a bug in our own code")' in str(info.value.__cause__)


def test_a_caller_waits_for_a_busy_pool_only_as_long_as_it_says(tmp_path: Path) -> None:
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    pool = ExtractPool(timeout=60, size=1, function=announce_and_hang)
    with ThreadPoolExecutor(1) as threads:
        busy = threads.submit(pool.extract, Page(str(fifo), b"<p>x</p>"))
        with open(fifo) as started:  # blocks until the worker has the page
            assert started.readline() == "extracting\n"
        with pytest.raises(ExtractError, match=r"^extract: no free extractor within 0.2s$"):
            pool.extract(Page(str(fifo), b"<p>y</p>"), wait=0.2)
        pool.close()
        with pytest.raises(ExtractError, match=r"exit code -9"):
            busy.result(timeout=30)
    assert pool.workers == 0


def test_workers_are_replaced_after_max_tasks_pages() -> None:
    with ExtractPool(timeout=30, size=1, max_tasks=2) as pool:
        for _ in range(5):
            assert pool.extract(page())
        assert pool.started == 3


def test_a_huge_page_is_cut_before_extraction_and_bounded_in_time() -> None:
    """10 MiB of links: without the cap trafilatura needs minutes; with it, the worker
    either answers or is stopped at the time limit, and the pool goes on."""
    links = "".join(f'<li><a href="/a/{n}">Story number {n} about the war</a></li>' for n in range(170_000))
    body = f"<html><body><ul>{links}</ul><p>{'Text of the article. ' * 50}</p></body></html>".encode()
    assert len(body) > 10 * 1024 * 1024
    with ExtractPool(timeout=3, size=1) as pool:
        try:
            text = pool.extract(Page(URL, body, max_bytes=256 * 1024, max_chars=5_000))
        except ExtractError as e:
            assert str(e) == "extract: took longer than 3s (worker stopped)"
        else:
            assert len(text) <= 5_000
        assert pool.extract(page())


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 30 s on two idle cores; minutes on a loaded machine
def test_every_page_of_the_corpus_extracts_without_a_crash() -> None:
    """The 609 real pages (trafilatura's evaluation set) through the pool, two at a time:
    no worker dies, none runs out of time or memory, and nearly all give text."""
    pages = corpus("pages")
    expected = json.loads((pages / "expectations.json").read_text(encoding="utf-8"))["pages"]

    def one(entry: dict[str, str]) -> str:
        body = gzip.decompress((pages / "pages" / f"{entry['id']}.html.gz").read_bytes())
        return pool.extract(Page(entry["url"], body))

    with ExtractPool(timeout=60, size=2) as pool, ThreadPoolExecutor(2) as threads:
        texts = list(threads.map(one, expected))  # an ExtractError fails the test
    assert len(texts) == 609
    assert sum(1 for t in texts if t) >= 600


@pytest.mark.parametrize(("timeout", "size"), [(0, 1), (1, 0)], ids=["no-time", "no-workers"])
def test_nonsense_limits_are_refused(timeout: float, size: int) -> None:
    with pytest.raises(ValueError):
        ExtractPool(timeout=timeout, size=size)


@pytest.fixture(autouse=True)
def _no_core_files(tmp_path: Path) -> Iterator[None]:
    yield
    assert not list(Path.cwd().glob("core*")), "a crashing worker left a core file"
