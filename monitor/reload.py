"""Noticing that config.yaml changed: a watchfiles thread on the file's directory
(editors save by renaming, so the file itself is not a stable thing to watch)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import watchfiles

log = logging.getLogger(__name__)


def watch_config(path: Path, on_change: Callable[[], None], stop: threading.Event) -> threading.Thread:
    """Call ``on_change`` after each burst of edits to ``path`` until ``stop`` is set."""
    target = path.resolve()

    def is_config(_change: watchfiles.Change, changed: str) -> bool:
        return Path(changed).name == target.name

    def run() -> None:
        for _changes in watchfiles.watch(
            target.parent,
            watch_filter=is_config,
            debounce=300,
            stop_event=stop,
            recursive=False,
            raise_interrupt=False,
        ):
            log.info('config file="%s" changed', target)
            on_change()

    thread = threading.Thread(target=run, name="config-watch", daemon=True)
    thread.start()
    return thread
