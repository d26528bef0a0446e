"""Article-page extraction in worker processes: trafilatura never runs in the daemon.

trafilatura's C underpinnings (lxml, libxml2) crashed whole daemons with SIGSEGV or
"double free" on real pages, about one run in seven over 609 of them (upstream
adbar/trafilatura #840, #925), and some pages take minutes (a 2 MiB list of links
takes 20 s per pass). ``ExtractPool.extract(page)`` runs ``extract.extract_page`` in a
``workers.WorkerPool``: each page gets ``fetch.page_timeout``, each worker an address
space of 1 GiB, and what can go wrong becomes that page's ``ExtractError``:

- ``extract: took longer than 10s (worker stopped)``;
- ``extract: the extractor process died (exit code -11)`` (a crash in C code);
- ``extract: ran out of memory (the extractor process is capped)``;
- ``extract: trafilatura failed (...)`` for an exception inside trafilatura;
- ``extract: no free extractor within 3s`` when every worker stays busy past the
  poll's budget (``wait``).

A dead, killed or exhausted worker is replaced on the next page; every worker is also
replaced after ``MAX_TASKS`` pages, so what a library keeps between calls (caches,
fragmented heap) never accumulates. ADR 0011 has the measurements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.errors import ExtractError
from monitor.extract import Page, extract_page
from monitor.workers import DEFAULT_MEMORY_LIMIT, PoolFront, StartMethod, WorkerPool, WorkFailed, usable_cpus

if TYPE_CHECKING:
    from monitor.config import Settings  # only for types: workers need not import pydantic

MAX_TASKS = 200  # pages per worker before a fresh one takes over


class ExtractPool(PoolFront):
    """Up to ``size`` extractor processes; ``extract`` gives each page ``timeout`` seconds."""

    def __init__(
        self,
        *,
        timeout: float,
        size: int,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        max_tasks: int | None = MAX_TASKS,
        start_method: StartMethod = "forkserver",
        function: Callable[[Page], str] = extract_page,
    ) -> None:
        self._pool: WorkerPool[Page, str] = WorkerPool(
            function,
            timeout=timeout,
            size=size,
            prefix="extract",
            noun="extractor",
            memory_limit=memory_limit,
            expected=(ExtractError,),
            max_tasks=max_tasks,
            start_method=start_method,
        )
        self.timeout, self.size = timeout, size

    @classmethod
    def for_settings(cls, settings: Settings) -> ExtractPool:
        """``fetch.page_workers`` workers (default: one per usable CPU, at least 2;
        extraction is CPU-bound), ``fetch.page_timeout`` per page, 1 GiB of address
        space each."""
        workers = settings.fetch.page_workers or max(2, usable_cpus())
        return cls(timeout=settings.fetch.page_timeout.total_seconds(), size=workers)

    def extract(self, page: Page, *, wait: float | None = None) -> str:
        """``extract_page(page)`` in a worker: at most ``wait`` seconds to get one, then
        ``timeout`` seconds to answer; anything else is ExtractError."""
        try:
            return self._pool.run(page, wait=wait)
        except WorkFailed as e:
            raise ExtractError(str(e)) from e
