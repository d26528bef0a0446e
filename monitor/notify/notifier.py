"""Sending alerts through Apprise, one channel (one or more URLs) at a time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import apprise

from monitor.config import Settings
from monitor.errors import NotifyError
from monitor.models import Alert
from monitor.notify.render import Format, Rendered, render
from monitor.notify.targets import instantiate
from monitor.text import one_line

log = logging.getLogger(__name__)

_FORMATS: Mapping[str, Format] = {
    apprise.NotifyFormat.HTML.value: "html",
    apprise.NotifyFormat.MARKDOWN.value: "markdown",
    apprise.NotifyFormat.TEXT.value: "text",
}


class Notifier(Protocol):
    """Delivers one alert to its channel or raises NotifyError."""

    def send(self, alert: Alert) -> None:
        """Send, or raise NotifyError saying why not."""


class AppriseNotifier:
    """Renders each alert in the format each Apprise plugin prefers, then sends it."""

    def __init__(self, settings: Settings) -> None:
        self._plugins: dict[str, list[Any]] = {}
        self._zones: dict[str, ZoneInfo] = {}
        for name, spec in settings.channels.items():
            plugins = [instantiate(url) for url in spec.urls]
            self._plugins[name] = [p for p in plugins if p is not None]
            self._zones[name] = settings.channel_timezone(name)

    @property
    def channels(self) -> list[str]:
        """Configured channel names."""
        return list(self._plugins)

    def send(self, alert: Alert) -> None:
        """Send to every URL of the alert's channel; any refusal raises NotifyError."""
        plugins = self._plugins.get(alert.channel)
        if not plugins:
            raise NotifyError(f"notify: channel '{alert.channel}' is not configured any more")
        for plugin in plugins:
            fmt = plugin_format(plugin)
            self._send_one(alert.channel, plugin, render(alert, fmt, self._zones[alert.channel]))

    def _send_one(self, channel: str, plugin: Any, message: Rendered) -> None:
        where = str(plugin.url(privacy=True)).split("?", 1)[0]
        capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
        with capture as captured:
            try:
                ok = plugin.notify(
                    body=message.body,
                    title=message.title,
                    notify_type=apprise.NotifyType.INFO,
                    body_format=apprise.NotifyFormat(message.format),
                )
            except Exception as e:  # Apprise plugins may raise anything; it is the channel's failure
                raise NotifyError(f"notify: {channel} ({where}): {type(e).__name__}: {e}") from e
        if not ok:
            reason = one_line(captured.getvalue(), 300) or "the service refused the message"
            raise NotifyError(f"notify: {channel} ({where}): {reason}")
        log.debug("sent channel=%s target=%s", channel, where)


def plugin_format(plugin: Any) -> Format:
    """The body format a plugin wants (its ``?format=`` override, else its default)."""
    resolve = getattr(plugin, "resolve_format", None)
    declared = resolve(None) if callable(resolve) else plugin.notify_format
    if isinstance(declared, tuple | list):
        declared = declared[0]
    value = getattr(declared, "value", declared)
    return _FORMATS.get(str(value), "text")
