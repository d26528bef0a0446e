"""Parsing in worker processes, so that no feed can hold a poll thread for ever.

Some parsing costs grow faster than the body: feedparser's author-email regex is
quadratic on a crafted ``<author>`` (feedparser issue 562: seconds per entry, minutes
for a feed; ``parse`` now cuts the runs it needs, ADR 0023, but the next such bug is
not known yet), and a thread in Python cannot be stopped from outside. A process can.
``ParsePool.parse`` has the signature of ``parse.parse`` and is what the app hands the
pipeline (``PollDeps.parser``): it runs ``parse`` in a ``workers.WorkerPool`` and waits
at most ``timeout`` seconds for the answer. A worker that takes longer is killed
(SIGKILL) and a fresh one takes its place on the next parse; the feed gets
``ParseError("parse: took longer than 20s (worker stopped)")``.

- Workers start lazily and stay up, one per poll thread at most (``size``).
- Only frozen values cross the pipe: Fetched in, ParsedFeed out (both pickle). A
  ParseError comes back as its message and is raised again here; any other
  exception is a bug and is raised again too, with the worker's traceback as its
  cause. A worker that dies mid-parse (killed by the kernel for memory, say) is a
  ParseError for that feed, not a crash of the poller.
- ``close()`` stops every worker; the app calls it on shutdown.

ADR 0008 has the measurements behind using it by default; ``monitor.workers`` has the
mechanics (shared with article pages, ADR 0011).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.errors import ParseError
from monitor.models import Fetched, ParsedFeed
from monitor.parse import parse
from monitor.workers import (
    DEFAULT_MEMORY_LIMIT,
    PoolFront,
    RemoteTraceback,
    StartMethod,
    WorkerPool,
    WorkFailed,
    usable_cpus,
)

if TYPE_CHECKING:
    from monitor.config import Settings  # only for types: workers need not import pydantic

__all__ = ["DEFAULT_MEMORY_LIMIT", "ParsePool", "Parser", "RemoteTraceback"]

Parser = Callable[[Fetched], ParsedFeed]


class ParsePool(PoolFront):
    """Up to ``size`` parser processes; ``parse`` gives each body ``timeout`` seconds."""

    def __init__(
        self,
        *,
        timeout: float,
        size: int,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        start_method: StartMethod = "forkserver",
        function: Parser = parse,
    ) -> None:
        self._pool: WorkerPool[Fetched, ParsedFeed] = WorkerPool(
            function,
            timeout=timeout,
            size=size,
            prefix="parse",
            noun="parser",
            memory_limit=memory_limit,
            expected=(ParseError,),
            start_method=start_method,
        )
        self.timeout, self.size = timeout, size

    @classmethod
    def for_settings(cls, settings: Settings) -> ParsePool:
        """``fetch.parse_workers`` workers (default: one per usable CPU, at least 2, never
        more than poll threads; parsing is CPU-bound, so more only costs memory and
        switching: one more than the CPUs was measured on a 2-CPU cold cycle and gained
        nothing, ADR 0008), ``fetch.parse_timeout`` per body, and an address space of
        1 GiB per worker (more if ``fetch.max_bytes`` is over 10 MiB)."""
        workers = settings.fetch.parse_workers or max(2, usable_cpus())
        return cls(
            timeout=settings.fetch.parse_timeout.total_seconds(),
            size=min(workers, settings.poll.concurrency),
            memory_limit=max(DEFAULT_MEMORY_LIMIT, 100 * int(settings.fetch.max_bytes)),
        )

    def parse(self, fetched: Fetched) -> ParsedFeed:
        """``parse.parse(fetched)`` in a worker, within ``timeout`` seconds."""
        try:
            return self._pool.run(fetched)
        except WorkFailed as e:
            raise ParseError(fetched.url, str(e)) from e
