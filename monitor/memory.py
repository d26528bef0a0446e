"""Fewer malloc arenas for the daemon: its memory, not its speed, is what grows.

glibc gives threads their own malloc arenas (up to eight per CPU), and a long-running
process with dozens of poll threads keeps the freed space of each arena. The daemon's
threads run Python under one lock, so they seldom allocate at the same moment and
gain little from separate arenas. Measured on the 1,000-feed daemon benchmark (10,000
rules, 20 ``about`` rules, the model loaded): peak RSS 405 to 407 MB with glibc's
default, 370 to 397 MB with two arenas, the same alert latency, and a first round of
new feeds about 8% longer (ADR 0021).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
DAEMON_ARENAS = 2


def limit_malloc_arenas(arenas: int = DAEMON_ARENAS) -> bool:
    """Ask glibc for at most ``arenas`` malloc arenas; True when it took the setting.

    Call it before the daemon starts its threads. ``MALLOC_ARENA_MAX`` in the
    environment wins (the person running monitor chose); on a C library without
    ``mallopt`` (musl, macOS) nothing changes.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    taken = bool(mallopt(M_ARENA_MAX, max(1, arenas)))
    log.debug("malloc arenas=%d taken=%s", arenas, taken)
    return taken
