"""Apprise URLs: our built-in ``console://`` target, validation, and redaction."""

from __future__ import annotations

import sys
import threading
from typing import Any

import apprise
from apprise.decorators import notify as apprise_notify

_registered = threading.Lock()
_done = False


def register_builtin_targets() -> None:
    """Register ``console://`` (prints alerts to stdout) with Apprise, once per process.

    Done on demand, not at import time, because Apprise's plugin table is global.
    """
    global _done
    with _registered:
        if _done:
            return
        register = apprise_notify(  # type: ignore[no-untyped-call]
            on="console", name="monitor console", body_format=apprise.NotifyFormat.TEXT
        )
        register(_print_alert)
        _done = True


def _print_alert(body: str, title: str, *args: Any, **kwargs: Any) -> bool:
    sys.stdout.write(f"== {title}\n{body}\n\n")
    sys.stdout.flush()
    return True


def instantiate(url: str) -> Any:
    """The Apprise plugin for a URL, or None when Apprise cannot use it."""
    register_builtin_targets()
    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def check_url(url: str) -> str | None:
    """None when Apprise accepts ``url``; otherwise a reason that does not leak secrets."""
    if instantiate(url) is None:
        return f"Apprise cannot use the URL {redact(url)} (see the Apprise URL syntax for this service)"
    return None


def redact(url: str) -> str:
    """A URL safe to print: Apprise's privacy form, or just its scheme."""
    plugin = instantiate(url) if "://" in url else None
    if plugin is not None:
        return str(plugin.url(privacy=True))
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return f"{scheme}://…" if scheme else "…"
