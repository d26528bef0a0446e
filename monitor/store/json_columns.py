"""JSON columns read back from rows that may have been damaged.

A row edited by hand, or written by a broken version, must not fail the work it is
read in (a claim of messages, a poll's story step) again on every retry: its JSON
column reads back as a default instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")


def read_json(text: str | None, read: Callable[[Any], _T], default: _T) -> _T:
    """``read(json.loads(text))``, or ``default`` when the text is no JSON, is nested too
    deep, or ``read`` finds the wrong shape (ValueError or TypeError)."""
    try:
        return read(json.loads(text or "null"))
    except (ValueError, TypeError, RecursionError):
        return default
