"""Article pages for teaser entries, read within a budget per poll.

A feed that carries only a headline and a teaser hides the watched words in the
article's page. For the new entries that may alert, ``with_pages`` fetches each page
(through the shared fetcher and its redirect guard, since the links come from feed
content), hands the body to the extractor (worker processes, ``extract_pool``) and
drops it. An entry keeps only the capped text (``fetch.page_max_chars``), never the
HTML. A page that fails becomes that entry's ``page_error``, and its feed text is used
alone.

One poll spends at most ``fetch.pages_per_poll`` pages, ``fetch.page_bytes_per_poll``
bytes and ``fetch.page_time_per_poll`` on pages. Entries past the budget keep their
feed text with ``page_error`` "skipped: budget: ...". Up to ``fetch.pages_in_parallel``
threads read pages, so no more bodies than that are held at once, whatever the number
of entries. A fetch still running when the time is up is left to end within
``fetch.deadline``, and its page is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from monitor.config import FetchSettings, Settings, format_duration
from monitor.config.schema import FullText
from monitor.errors import ExtractError, FetchError
from monitor.extract import Page, extract_page
from monitor.models import Entry, Fetched, NotModified

log = logging.getLogger(__name__)

SKIPPED = "skipped: budget"


class PageFetcher(Protocol):
    """What the page stage needs of ``fetch.Fetcher``."""

    def fetch(
        self, url: str, *, now: datetime | None = None, origin: str | None = None
    ) -> Fetched | NotModified: ...


class Extractor(Protocol):
    """Page -> article text, or ExtractError; ``wait``: most seconds to wait for a worker."""

    def __call__(self, page: Page, *, wait: float | None = None) -> str: ...


class PageDeps(Protocol):
    """What a poll hands the page stage (``pipeline.PollDeps`` has it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def fetcher(self) -> PageFetcher: ...

    @property
    def extractor(self) -> Extractor: ...


def extract_here(page: Page, *, wait: float | None = None) -> str:
    """Extraction in this process, unisolated (the default for tools and tests)."""
    return extract_page(page)


def wants_page(entry: Entry, mode: FullText, min_words: int) -> bool:
    """Whether to read the entry's page: every one for ``always``, teasers for ``auto``."""
    if mode == "never" or not entry.link:
        return False
    return mode == "always" or entry.word_count() < min_words


@dataclass
class Budget:
    """What one poll may still spend on pages; shared by its page threads."""

    pages: int
    bytes: int
    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0, init=False)
    _pages: int = field(default=0, init=False)
    _bytes: int = field(default=0, init=False)
    _over: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @classmethod
    def of(cls, settings: FetchSettings, clock: Callable[[], float] = time.monotonic) -> Budget:
        seconds = settings.page_time_per_poll.total_seconds()
        return cls(settings.pages_per_poll, int(settings.page_bytes_per_poll), seconds, clock)

    def admit(self) -> str | None:
        """Count one more page; the reason it is refused when the budget is spent."""
        with self._lock:
            if self._over or self.left() <= 0:
                return self.out_of_time
            if self._pages >= self.pages:
                return f"{SKIPPED}: over fetch.pages_per_poll ({self.pages} pages in one poll)"
            if self._bytes >= self.bytes:
                return f"{SKIPPED}: over fetch.page_bytes_per_poll ({self.bytes:,} bytes in one poll)"
            self._pages += 1
            return None

    def spend(self, size: int) -> None:
        with self._lock:
            self._bytes += size

    def left(self) -> float:
        """Seconds left (negative once past)."""
        return self.seconds - (self.clock() - self.started)

    def end(self) -> None:
        """The poll stopped waiting: pages still being read are dropped."""
        with self._lock:
            self._over = True

    @property
    def over(self) -> bool:
        return self._over

    @property
    def out_of_time(self) -> str:
        limit = format_duration(timedelta(seconds=self.seconds))
        return f"{SKIPPED}: over fetch.page_time_per_poll ({limit} for the pages of one poll)"


def with_pages(
    entries: Sequence[Entry], mode: FullText, deps: PageDeps, now: datetime, origin: str | None = None
) -> list[Entry]:
    """Entries with their page text (or ``page_error``) where ``wants_page``; in order.

    Only new entries come here, so a page is fetched at most once per article.
    """
    settings = deps.settings.fetch
    wanted = [e for e in entries if wants_page(e, mode, settings.full_text_min_words)]
    if not wanted:
        return list(entries)
    budget = Budget.of(settings)
    read = _read_all(wanted, deps, budget, now, origin)
    skipped = [e.page_error for e in read.values() if e.page_error and e.page_error.startswith(SKIPPED)]
    if skipped:
        log.info('pages skipped=%d of=%d reason="%s"', len(skipped), len(wanted), skipped[0])
    return [read.get(e.key, e) for e in entries]


def _read_all(
    wanted: Sequence[Entry], deps: PageDeps, budget: Budget, now: datetime, origin: str | None
) -> dict[str, Entry]:
    """Read the pages on ``fetch.pages_in_parallel`` threads until done or out of time."""
    threads = ThreadPoolExecutor(
        min(deps.settings.fetch.pages_in_parallel, len(wanted)), thread_name_prefix="page"
    )
    try:
        futures = [threads.submit(read_page, e, deps, budget, now, origin) for e in wanted]
        done, _ = wait(futures, timeout=max(0.0, budget.left()))
    finally:
        budget.end()
        threads.shutdown(wait=False, cancel_futures=True)  # a fetch in flight ends by its deadline
    late = budget.out_of_time
    return {
        e.key: f.result() if f in done else replace(e, page_error=late)
        for e, f in zip(wanted, futures, strict=True)
    }


def read_page(
    entry: Entry, deps: PageDeps, budget: Budget, now: datetime, origin: str | None = None
) -> Entry:
    """One entry with its page's text, or with the reason it has none."""
    assert entry.link is not None
    refused = budget.admit()
    if refused:
        return replace(entry, page_error=refused)
    try:
        fetched = deps.fetcher.fetch(entry.link, now=now, origin=origin)
    except FetchError as e:
        log.info('page link="%s" status=error error="%s"', entry.link, e)
        return replace(entry, page_error=str(e))
    if isinstance(fetched, NotModified):  # no validators were sent; a 304 here is the server's bug
        return replace(entry, page_error="fetch: unexpected 304 for an article page")
    budget.spend(len(fetched.body))
    if budget.over:
        return replace(entry, page_error=budget.out_of_time)
    settings = deps.settings.fetch
    page = Page(fetched.final_url, fetched.body, int(settings.page_max_bytes), settings.page_max_chars)
    del fetched
    try:
        text = deps.extractor(page, wait=budget.left())
    except ExtractError as e:
        if budget.left() <= 0:  # no worker came free before the poll's time for pages ran out
            return replace(entry, page_error=budget.out_of_time)
        log.info('page link="%s" status=error error="%s"', entry.link, e)
        return replace(entry, page_error=str(e))
    if not text:
        return replace(entry, page_error="extract: no article text found on the page")
    return replace(entry, page_text=text)
