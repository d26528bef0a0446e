"""What every command shares with ``cli``: exit codes, the ``-c`` option, tables.

These mirror ``monitor.cli`` (which imports the command modules, so they cannot
import it back).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


class CommandExit(Exception):
    """Stop a command with an exit code and a message for stderr."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """``-c/--config``, defaulting like every other command's."""
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("MONITOR_CONFIG", "config.yaml")),
        help="config file (default: $MONITOR_CONFIG or ./config.yaml)",
    )


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, no trailing blanks."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def when(value: datetime | None, zone: ZoneInfo) -> str:
    """A time for people, in ``zone``; ``never`` for None."""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else "never"
