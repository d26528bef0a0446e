"""The app's current poll dependencies, and the old ones' resources closed once unused.

A reload swaps in new dependencies (a new HTTP client when ``fetch`` changed, new
worker pools when their settings changed) while polls that began before it finish
with the old ones. The old client keeps its pooled connections open until it is
closed, so a daemon reloaded every day for months would hold a socket pool per
reload. Each swap starts a generation; a resource retired at a swap is closed as soon
as no poll of that generation or an older one is still running (at once when none
is). Pure bookkeeping under one lock; the closers run outside it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Closer = Callable[[], None]


class Generations(Generic[T]):
    """``current`` for new work; ``use()`` while working; ``replace()`` at a reload."""

    def __init__(self, current: T) -> None:
        self._lock = threading.Lock()
        self._current = current
        self._generation = 0
        self._in_flight: Counter[int] = Counter()
        self._retired: list[tuple[int, Closer]] = []

    @property
    def current(self) -> T:
        with self._lock:
            return self._current

    @property
    def pending(self) -> int:
        """Retired resources not closed yet (some older poll still runs)."""
        with self._lock:
            return len(self._retired)

    @contextmanager
    def use(self) -> Iterator[T]:
        """The current dependencies, counted as in use until the block ends."""
        with self._lock:
            generation, value = self._generation, self._current
            self._in_flight[generation] += 1
        try:
            yield value
        finally:
            with self._lock:
                self._in_flight[generation] -= 1
                if not self._in_flight[generation]:
                    del self._in_flight[generation]
                due = self._take_due()
            _run(due)

    def replace(self, new: T, retired: Iterable[Closer] = ()) -> None:
        """Swap in ``new``; ``retired`` close once nothing that began before now runs."""
        with self._lock:
            self._retired += [(self._generation, close) for close in retired]
            self._current = new
            self._generation += 1
            due = self._take_due()
        _run(due)

    def close(self) -> None:
        """Close every retired resource now, in use or not (the app is closing)."""
        with self._lock:
            due, self._retired = [close for _, close in self._retired], []
        _run(due)

    def _take_due(self) -> list[Closer]:
        """The closers of generations older than every poll in flight (lock held)."""
        oldest = min(self._in_flight, default=self._generation)
        due = [close for generation, close in self._retired if generation < oldest]
        self._retired = [(g, close) for g, close in self._retired if g >= oldest]
        return due


def _run(closers: Iterable[Closer]) -> None:
    """Run each closer; one that fails is logged and the others still run."""
    for close in closers:
        try:
            close()
        except Exception as e:  # closing an old client or pool must not break a poll
            log.warning('reload: closing a retired resource failed: error="%s"', e)
