"""Pure functions run in worker processes, each call with a time limit and every worker
with an address-space limit, so that no input can hold, crash or bloat the daemon.

A Python thread cannot be stopped from outside and shares the process with everything
else: a parser stuck in a quadratic regex holds its poll thread for ever, and a
segmentation fault in C code (lxml under trafilatura: adbar/trafilatura #840, #925)
kills the daemon. A process can be killed, and can die alone. ``WorkerPool.run(item)``
sends ``item`` to a worker process, which answers ``function(item)``:

- A call that takes longer than ``timeout`` seconds gets its worker killed (SIGKILL);
  a fresh one starts for the next call. The caller gets ``WorkFailed("<prefix>: took
  longer than 20s (worker stopped)")``.
- A worker that dies mid-call (a crash in C code, the kernel's OOM killer) is
  ``WorkFailed`` for that call only; a worker that runs out of its address space
  (RLIMIT_AS, ``memory_limit``) answers ``WorkFailed`` and is replaced too.
- An exception of a type in ``expected`` (the function's own, such as ParseError)
  comes back as ``WorkFailed`` with its message. Any other exception is a bug: it is
  raised again in the caller, with the worker's traceback as its cause.
- Workers start lazily and stay up (at most ``max_tasks`` calls each, then a fresh one),
  at most ``size`` of them; each runs one call at a time and several threads may call
  ``run`` at once (they wait for a free worker).
- Workers come from the "forkserver" context: a clean single-threaded server process
  forks each one (forking the poller itself, which has threads, could copy a lock held
  by another thread). The server preloads every pool's function module, so a worker
  starts in milliseconds. It does not import the main module (CPython 3.11 asks for a
  ``main_path`` that ``spawn.get_preparation_data`` never gives), so each worker runs
  a main *script* once more as ``__mp_main__`` (a ``python -m`` package's
  ``__main__`` is skipped). For the ``monitor`` console script that script is pip's
  launcher, whose entry point ``monitor.entry`` imports the command line only when it
  runs: the server and its workers carry neither (ADR 0008). The
  preload list is the union over the pools made before the server's first start: the
  app makes its pools before any worker runs. "spawn" works too and is slower to start.
- Only picklable values cross the pipe. ``close()`` stops every worker.

ADR 0008 (parsing) and ADR 0011 (article pages) have the measurements.
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
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Generic, Literal, Self, TypeVar

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")
StartMethod = Literal["forkserver", "spawn"]
_Reply = (
    tuple[Literal["ok"], object]
    | tuple[Literal["error"], str]
    | tuple[Literal["memory"], str]
    | tuple[Literal["bug"], BaseException, str]
)
_STOP_WAIT = 2.0  # seconds a worker gets to exit after being asked to
DEFAULT_MEMORY_LIMIT = 1024**3  # address space per worker (ADR 0008, ADR 0011)
_numbers = itertools.count(1)
_preload: set[str] = {"__main__", __name__}
_preload_lock = threading.Lock()


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (a container's cpuset,
    ``taskset``, a pinned service unit), else the machine's count. ``os.cpu_count``
    alone names every CPU of the host, so a container limited to two of 64 would
    start 64 workers."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no affinity on this platform
        return os.cpu_count() or 1


class WorkFailed(Exception):
    """A call failed in a way that is the input's fault, not a bug: too slow, too big,
    a worker that died, or an ``expected`` exception. ``str()`` is the whole message."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (the ``__cause__`` of the re-raise)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def serve(
    conn: Connection,
    function: Callable[[object], object],
    memory_limit: int | None,
    expected: tuple[type[Exception], ...],
) -> None:
    """A worker's life: answer each item received until told to stop (None) or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    # Libraries log here to a process nobody configured; Python would print their
    # warnings raw on the daemon's stderr. A worker speaks only through its replies.
    logging.disable(logging.CRITICAL)
    if memory_limit is not None:
        _limit_memory(memory_limit)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        conn.send(_run(function, item, expected))


def _limit_memory(limit: int) -> None:
    """Cap this process's address space: a call that needs more gets MemoryError."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows)
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _run(function: Callable[[object], object], item: object, expected: tuple[type[Exception], ...]) -> _Reply:
    try:
        return ("ok", function(item))
    except MemoryError:
        return ("memory", "ran out of memory")
    except expected as e:
        return ("error", str(e))
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
    tasks: int = field(default=0)

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


class WorkerPool(Generic[In, Out]):
    """Up to ``size`` processes running ``function``; ``run`` gives each call ``timeout`` seconds.

    ``prefix`` and ``noun`` word the failures: ``"parse"`` and ``"parser"`` give
    ``parse: the parser process died (exit code -11)``.
    """

    def __init__(
        self,
        function: Callable[[In], Out],
        *,
        timeout: float,
        size: int,
        prefix: str,
        noun: str,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        expected: tuple[type[Exception], ...] = (),
        max_tasks: int | None = None,
        start_method: StartMethod = "forkserver",
    ) -> None:
        if timeout <= 0 or size < 1 or (max_tasks is not None and max_tasks < 1):
            raise ValueError("a worker pool needs timeout > 0, size >= 1 and max_tasks >= 1")
        self.timeout = timeout
        self.size = size
        self._function = function
        self._prefix, self._noun = prefix, noun
        self._memory_limit = memory_limit
        self._expected = expected
        self._max_tasks = max_tasks
        self._context = _context(start_method, function)
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False
        self._retired = False
        self.started = 0  # workers started so far (tests watch replacements)

    @property
    def workers(self) -> int:
        """Worker processes alive now (idle or busy)."""
        with self._lock:
            return sum(w.process.is_alive() for w in [*self._idle, *self._busy])

    def run(self, item: In, *, wait: float | None = None) -> Out:
        """``function(item)`` in a worker, within ``timeout`` seconds; when every worker is
        busy, wait at most ``wait`` seconds for one (None: as long as it takes)."""
        if not self._slots.acquire(timeout=None if wait is None else max(0.0, wait)):
            raise WorkFailed(f"{self._prefix}: no free {self._noun} within {round(wait or 0, 1):g}s")
        try:
            reply = self._call(item)
        finally:
            self._slots.release()
        if reply[0] == "ok":
            return reply[1]  # type: ignore[return-value]  # what function returned, as sent
        if reply[0] == "error":
            raise WorkFailed(reply[1])
        if reply[0] == "memory":
            raise WorkFailed(f"{self._prefix}: ran out of memory (the {self._noun} process is capped)")
        raise reply[1] from RemoteTraceback(reply[2])

    def _call(self, item: In) -> _Reply:
        """One round trip to a worker (the caller holds a slot)."""
        worker = self._dispatch(item)
        try:
            reply = self._wait(worker)
        except BaseException:
            self._discard(worker)
            raise
        if reply[0] == "memory":
            self._discard(worker)  # what is left of its heap is not worth keeping
        else:
            self._checkin(worker)
        return reply

    def _dispatch(self, item: In) -> _Worker:
        """Hand the item to an idle worker, else to a new one.

        A worker that died while idle (the kernel's OOM killer, an operator) fails the
        send: it never saw the item, so it is dropped and the next one tried.
        """
        while True:
            worker, new = self._checkout()
            try:
                worker.conn.send(item)
            except OSError as e:
                self._discard(worker)
                if new:
                    raise WorkFailed(f"{self._prefix}: could not start a {self._noun} process ({e})") from e
                continue
            worker.tasks += 1
            return worker

    def _wait(self, worker: _Worker) -> _Reply:
        """The worker's reply; WorkFailed when it takes too long (it is then killed) or dies."""
        try:
            if worker.conn.poll(self.timeout):
                reply: _Reply = worker.conn.recv()
                return reply
        except (EOFError, OSError) as e:
            worker.process.join(_STOP_WAIT)
            code = worker.process.exitcode
            raise WorkFailed(f"{self._prefix}: the {self._noun} process died (exit code {code})") from e
        log.debug("%s took longer than %gs: stopping its worker", self._noun, self.timeout)
        raise WorkFailed(f"{self._prefix}: took longer than {self.timeout:g}s (worker stopped)")

    def _checkout(self) -> tuple[_Worker, bool]:
        """An idle worker, else a new one (and whether it is new)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self._noun} pool is closed")
            new = not self._idle
            worker = self._start() if new else self._idle.pop()
            self._busy.add(worker)
            return worker, new

    def _checkin(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            spent = self._max_tasks is not None and worker.tasks >= self._max_tasks
            if not (self._closed or self._retired or spent):
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
            args=(theirs, self._function, self._memory_limit, self._expected),
            name=f"monitor-{self._noun}-{next(_numbers)}",
            daemon=True,
        )
        process.start()
        theirs.close()
        self.started += 1
        return _Worker(process, ours)

    def retire(self) -> None:
        """Stop the idle workers now and each busy one when its call returns. Calls still
        run (in a worker started for the call and stopped after it), so work that began
        with this pool before a reload replaced it finishes with it; nothing stays up."""
        with self._lock:
            self._retired = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    def close(self) -> None:
        """Stop the idle workers, kill busy ones; later calls to ``run`` raise RuntimeError."""
        with self._lock:
            self._closed = True
            idle, busy = self._idle, list(self._busy)
            self._idle = []
        for worker in busy:
            worker.process.kill()
        for worker in idle:
            worker.stop()

    def __enter__(self) -> WorkerPool[In, Out]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PoolFront:
    """What a pool with its own call signature (``ParsePool.parse``,
    ``ExtractPool.extract``) passes on to its ``WorkerPool`` unchanged: the counters,
    ``retire``, ``close`` and ``with``."""

    _pool: WorkerPool[Any, Any]

    @property
    def started(self) -> int:
        """Workers started so far (tests watch replacements)."""
        return self._pool.started

    @property
    def workers(self) -> int:
        """Worker processes alive now (idle or busy)."""
        return self._pool.workers

    def retire(self) -> None:
        """A reload replaced this pool: let calls in flight finish, keep no worker (``WorkerPool.retire``)."""
        self._pool.retire()

    def close(self) -> None:
        """Stop the idle workers, kill busy ones; later calls raise RuntimeError."""
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _context(start_method: StartMethod, function: Callable[..., object]) -> ForkServerContext | SpawnContext:
    """The multiprocessing context; for forkserver, with ``function``'s module preloaded.

    The preload list takes effect when this process first starts its fork server
    (one per process, shared by every pool), so it is the union of every pool's.
    """
    if start_method == "spawn":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    with _preload_lock:
        _preload.add(function.__module__)
        context.set_forkserver_preload(sorted(_preload))
    return context
