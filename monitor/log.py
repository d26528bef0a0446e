"""Logging set-up for the command line: ``key=value`` text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
_QUIET = {
    "alembic": logging.WARNING,  # monitor.store.migrate logs the upgrade itself
    "apscheduler": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}


_redactor: list[Callable[[str], str]] = [lambda text: text]


def install_redactor(redact: Callable[[str], str]) -> None:
    """From now on every log line (and ``redact_text``) hides the config's secrets."""
    _redactor[0] = redact


def redact_text(text: str) -> str:
    """Hide secrets in text printed outside logging (errors, status)."""
    return _redactor[0](text)


_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def one_record(message: str) -> str:
    """The message with line breaks and other controls escaped, so one record is one
    line of the text log: a newline in a value (from a feed, a server or a file) cannot
    start a line that looks like another record."""
    return message.translate(_CONTROLS)


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_record(record.message)  # a traceback, added after, keeps its lines
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact_text(json.dumps(payload, ensure_ascii=False))


def configure(level: str = "INFO", fmt: LogFormat = "text") -> None:
    """Send logs to stderr in the chosen format; quiet chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))
    # Apprise's own log lines are captured per send and reported in our NotifyError.
    logging.getLogger("apprise").propagate = False
