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


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

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
