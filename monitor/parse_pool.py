"""Parsing in worker processes, so that no feed can hold a poll thread for ever.

Some parsing costs grow faster than the body: feedparser's author-email regex is
quadratic on a crafted ``<author>`` (feedparser issue 562: seconds per entry, minutes
for a feed), and a thread in Python cannot be stopped from outside. A process can.
``ParsePool.parse`` has the signature of ``parse.parse`` and is what the app hands the
pipeline (``PollDeps.parser``): it sends the fetched body to a worker process and
waits at most ``timeout`` seconds for the answer. A worker that takes longer is
killed (SIGKILL) and a fresh one takes its place on the next parse; the feed gets
``ParseError("parse: took longer than 20s (worker stopped)")``.

- Workers start lazily and stay up, one per poll thread at most (``size``); each
  parses one body at a time. Several threads may call ``parse`` at once.
- Workers come from the "forkserver" context: a clean single-threaded server process
  that has already imported the parser forks each one (forking the poller itself,
  which has threads, could copy a lock held by another thread). "spawn" works too
  and is slower to start.
- Only frozen values cross the pipe: Fetched in, ParsedFeed out (both pickle). A
  ParseError comes back as its message and is raised again here; any other
  exception is a bug and is raised again too, with the worker's traceback as its
  cause. A worker that dies mid-parse (killed by the kernel for memory, say) is a
  ParseError for that feed, not a crash of the poller.
- ``close()`` stops every worker; the app calls it on shutdown.

ADR 0008 has the measurements behind using it by default.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Literal

from monitor.errors import ParseError
from monitor.models import Fetched, ParsedFeed
from monitor.parse import parse

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

    from monitor.config import Settings  # only for types: workers need not import pydantic

log = logging.getLogger(__name__)

Parser = Callable[[Fetched], ParsedFeed]
StartMethod = Literal["forkserver", "spawn"]
_Reply = (
    tuple[Literal["ok"], ParsedFeed]
    | tuple[Literal["error"], str]
    | tuple[Literal["bug"], BaseException, str]
)
_STOP_WAIT = 2.0  # seconds a worker gets to exit after being asked to
DEFAULT_MEMORY_LIMIT = 1024**3  # address space per worker; a 10 MiB feed needs about 250 MB (ADR 0008)
_numbers = itertools.count(1)


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (the ``__cause__`` of the re-raise)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def serve(conn: Connection, function: Parser, memory_limit: int | None) -> None:
    """A worker's life: parse each Fetched received until told to stop (None) or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    if memory_limit is not None:
        _limit_memory(memory_limit)
    while True:
        try:
            fetched = conn.recv()
        except (EOFError, OSError):
            return
        if fetched is None:
            return
        conn.send(_run(function, fetched))


def _limit_memory(limit: int) -> None:
    """Cap this process's address space: a parse that needs more gets MemoryError."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows)
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _run(function: Parser, fetched: Fetched) -> _Reply:
    try:
        return ("ok", function(fetched))
    except ParseError as e:
        return ("error", str(e))
    except MemoryError:
        return ("error", "parse: ran out of memory (the parser process is capped)")
    except Exception as e:
        return ("bug", _portable(e), traceback.format_exc())


def _portable(e: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError naming it."""
    try:
        pickle.loads(pickle.dumps(e))
    except Exception:
        return RuntimeError(repr(e))
    return e


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection

    def stop(self, *, wait: float = _STOP_WAIT) -> None:
        """Ask the worker to exit; kill it if it does not within ``wait`` seconds."""
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(wait)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class ParsePool:
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
        if timeout <= 0 or size < 1:
            raise ValueError("a parse pool needs timeout > 0 and size >= 1")
        self.timeout = timeout
        self.size = size
        self._memory_limit = memory_limit
        self._function = function
        self._context: ForkServerContext | SpawnContext
        if start_method == "forkserver":
            self._context = multiprocessing.get_context("forkserver")
            # Takes effect when this process first starts its fork server. Workers are
            # then forked with this module and the parser imported (5 ms to start, not
            # 0.3 s), and with the main module imported too, which a worker would
            # otherwise import again: for the ``monitor`` console script, the whole CLI.
            self._context.set_forkserver_preload(["__main__", __name__, function.__module__])
        else:
            self._context = multiprocessing.get_context("spawn")
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False
        self.started = 0  # workers started so far (tests watch replacements)

    @property
    def workers(self) -> int:
        """Worker processes alive now (idle or parsing)."""
        with self._lock:
            return sum(w.process.is_alive() for w in [*self._idle, *self._busy])

    @classmethod
    def for_settings(cls, settings: Settings) -> ParsePool:
        """``fetch.parse_workers`` workers (default: one per CPU, never more than poll
        threads; parsing is CPU-bound, so more only costs memory and switching),
        ``fetch.parse_timeout`` per body, and an address space of 1 GiB per worker (more
        if ``fetch.max_bytes`` is over 10 MiB)."""
        workers = settings.fetch.parse_workers or max(2, os.cpu_count() or 1)
        return cls(
            timeout=settings.fetch.parse_timeout.total_seconds(),
            size=min(workers, settings.poll.concurrency),
            memory_limit=max(DEFAULT_MEMORY_LIMIT, 100 * int(settings.fetch.max_bytes)),
        )

    def parse(self, fetched: Fetched) -> ParsedFeed:
        """``parse.parse(fetched)`` in a worker, within ``timeout`` seconds."""
        with self._slots:
            worker = self._dispatch(fetched)
            try:
                reply = self._wait(worker, fetched)
            except BaseException:
                self._discard(worker)
                raise
            self._checkin(worker)
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            raise ParseError(fetched.url, reply[1])
        raise reply[1] from RemoteTraceback(reply[2])

    def _dispatch(self, fetched: Fetched) -> _Worker:
        """Hand the body to an idle worker, else to a new one.

        A worker that died while idle (the kernel's OOM killer, an operator) fails the
        send: it never saw the body, so it is dropped and the next one tried.
        """
        while True:
            worker, new = self._checkout()
            try:
                worker.conn.send(fetched)
            except OSError as e:
                self._discard(worker)
                if new:
                    raise ParseError(fetched.url, f"parse: could not start a parser process ({e})") from e
                continue
            return worker

    def _wait(self, worker: _Worker, fetched: Fetched) -> _Reply:
        """The worker's reply; ParseError when it takes too long (it is then killed) or dies."""
        try:
            if worker.conn.poll(self.timeout):
                reply: _Reply = worker.conn.recv()
                return reply
        except (EOFError, OSError) as e:
            worker.process.join(_STOP_WAIT)
            code = worker.process.exitcode
            raise ParseError(fetched.url, f"parse: the parser process died (exit code {code})") from e
        log.debug('parse url="%s" took longer than %gs: stopping its worker', fetched.url, self.timeout)
        raise ParseError(fetched.url, f"parse: took longer than {self.timeout:g}s (worker stopped)")

    def _checkout(self) -> tuple[_Worker, bool]:
        """An idle worker, else a new one (and whether it is new)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the parse pool is closed")
            new = not self._idle
            worker = self._start() if new else self._idle.pop()
            self._busy.add(worker)
            return worker, new

    def _checkin(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if not self._closed:
                self._idle.append(worker)
                return
        worker.stop()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.kill()

    def _start(self) -> _Worker:
        """A new worker process (called with the lock held, so starts are serialised)."""
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=serve,
            args=(theirs, self._function, self._memory_limit),
            name=f"monitor-parse-{next(_numbers)}",
            daemon=True,
        )
        process.start()
        theirs.close()
        self.started += 1
        return _Worker(process, ours)

    def close(self) -> None:
        """Stop the idle workers, kill busy ones; later calls to ``parse`` raise RuntimeError."""
        with self._lock:
            self._closed = True
            idle, busy = self._idle, list(self._busy)
            self._idle = []
        for worker in busy:
            worker.process.kill()
        for worker in idle:
            worker.stop()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
