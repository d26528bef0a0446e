"""Unexpected exceptions caught at a job boundary (one feed's poll, one message):
the traceback is logged the first time each distinct fault is seen, later ones as
one line, so a feed that crashes on every poll neither hides the bug nor floods the log.

A fault's identity is its type and where it was raised (the innermost frame's file
and line); the set of those remembered is bounded.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import OrderedDict

MEMORY = 1000


def fingerprint(error: BaseException) -> str:
    """``TypeName@file.py:123``: what makes two faults the same one."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return f"{type(error).__name__}@{where}"


def message(error: BaseException) -> str:
    """An exception's message; even one whose ``__str__`` fails says what it was (a
    boundary that reports a fault must not raise while reporting it)."""
    try:
        return str(error)
    except Exception:
        return f"({type(error).__name__} with a message that cannot be shown)"


def describe(error: BaseException, limit: int = 300) -> str:
    """``internal error: ValueError: bad value``, one line, bounded."""
    text = " ".join(message(error).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"internal error: {type(error).__name__}" + (f": {text}" if text else "")


class Faults:
    """Remembers which faults were already logged with their traceback."""

    def __init__(self, memory: int = MEMORY) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._memory = memory
        self._lock = threading.Lock()

    def first(self, error: BaseException) -> bool:
        """Whether this is the first time this fault is seen (then it is remembered)."""
        key = fingerprint(error)
        with self._lock:
            if key in self._seen:
                self._seen[key] += 1
                self._seen.move_to_end(key)
                return False
            self._seen[key] = 1
            if len(self._seen) > self._memory:
                self._seen.popitem(last=False)
            return True

    def log(self, logger: logging.Logger, error: BaseException, context: str) -> None:
        """Log ``context`` with the traceback once per distinct fault, else one line."""
        if self.first(error):
            logger.error("%s %s", context, describe(error), exc_info=error)
        else:
            logger.error("%s %s (seen before; traceback logged once)", context, describe(error))
