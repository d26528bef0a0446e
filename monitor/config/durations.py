"""Durations as people write them in YAML: ``90s``, ``10m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)\s*([wdhms])")
_WHOLE = re.compile(r"(?:\d+\s*[wdhms]\s*)+")


def parse_duration(value: object) -> timedelta:
    """Turn ``"1h30m"`` (or a number of seconds) into a positive timedelta.

    Raises ValueError with a message a user can act on.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"bad duration {_shown(value)}: write it like 90s, 10m, 1h30m or 2d")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip().lower()):
        text = value.strip().lower()
        seconds = float(sum(int(n) * _UNITS[u] for n, u in _PART.findall(text)))
    else:
        raise ValueError(f"bad duration {_shown(value)}: write it like 90s, 10m, 1h30m or 2d")
    if not seconds > 0:  # also refuses NaN
        raise ValueError(f"bad duration {_shown(value)}: must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"bad duration {_shown(value)}: too long") from None


def _shown(value: object) -> str:
    """A value as it looked in YAML: ``true``, ``(empty)``, ``'10x'``."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "(empty)"
    return repr(value)


def format_duration(delta: timedelta) -> str:
    """The inverse of parse_duration, for messages: ``timedelta(minutes=90)`` -> ``1h30m``."""
    remaining = int(delta.total_seconds())
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        if unit == "w":
            continue
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
