"""Sending alerts through Apprise: each URL of a channel is a target tried on its own.

Apprise returns only True/False per send; the reason is in its log. A thread-local
handler on the ``apprise`` logger captures those lines for the send in progress, so
channels can be sent in parallel and each failure still says why.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import apprise

from monitor.config import Settings, TemplateSpec
from monitor.errors import NotifyError
from monitor.models import Alert
from monitor.notify.render import Format, Rendered, md_escape, render, render_batch
from monitor.notify.targets import instantiate
from monitor.text import one_line

log = logging.getLogger(__name__)

_FORMATS: Mapping[str, Format] = {
    apprise.NotifyFormat.HTML.value: "html",
    apprise.NotifyFormat.MARKDOWN.value: "markdown",
    apprise.NotifyFormat.TEXT.value: "text",
}
IDENTITY_HEADER = "X-Monitor-Delivery-Id"
IDENTITY_FIELD = "monitor_id"
STORY_HEADER = "X-Monitor-Story"
STORY_FIELD = "monitor_story"
THREAD_HEADERS = (STORY_HEADER, "References", "In-Reply-To")


class Notifier(Protocol):
    """Delivers alerts to their channel or raises NotifyError."""

    def send(self, alert: Alert) -> None:
        """Send one alert, or raise NotifyError saying why not."""

    def send_batch(self, channel: str, alerts: Sequence[Alert], reason: str) -> None:
        """Send several alerts as one message (a digest or a rate-limit summary)."""


class _Capture(logging.Handler):
    """Collects apprise log lines emitted by the current thread while active."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self._local, "lines", None)
        if lines is not None:
            lines.append(record.getMessage())

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        lines: list[str] = []
        self._local.lines = lines
        try:
            yield lines
        finally:
            self._local.lines = None


_capture = _Capture()
_installed = threading.Lock()


def _install_capture() -> None:
    with _installed:
        logger = logging.getLogger("apprise")
        if _capture not in logger.handlers:
            logger.addHandler(_capture)
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)


class AppriseNotifier:
    """Renders each alert in the format each Apprise plugin prefers, then sends it."""

    def __init__(self, settings: Settings) -> None:
        _install_capture()
        self._plugins: dict[str, list[Any]] = {}
        # One send at a time per plugin object: the message key is stamped on the
        # plugin itself (its headers, its payload extras), and poll threads deliver
        # through the same channel at once.
        self._sending: dict[int, threading.Lock] = {}
        self._zones: dict[str, ZoneInfo] = {}
        self._templates: dict[str, TemplateSpec | None] = {}
        self._redact = settings.redactor()
        timeout = settings.delivery.timeout.total_seconds()
        for name, spec in settings.channels.items():
            self._plugins[name] = [_bounded(instantiate(url), timeout) for url in spec.urls]
            self._sending.update((id(p), threading.Lock()) for p in self._plugins[name] if p is not None)
            self._zones[name] = settings.channel_timezone(name)
            self._templates[name] = spec.template

    def send(self, alert: Alert) -> None:
        """Send to every URL of the channel that does not have it yet."""
        zone = self._zone(alert.channel)
        self._send_all(
            alert.channel,
            alert.done_targets,
            lambda fmt: render(alert, fmt, zone, self._templates[alert.channel]),
            alert.message_key,
            thread_headers(alert),
        )

    def send_batch(self, channel: str, alerts: Sequence[Alert], reason: str) -> None:
        """One message listing several alerts, grouped by rule, newest first."""
        zone = self._zone(channel)
        done = frozenset.intersection(*(a.done_targets for a in alerts)) if alerts else frozenset()
        key = "batch-" + "-".join(sorted(a.message_key for a in alerts))[:200]
        self._send_all(channel, done, lambda fmt: render_batch(alerts, fmt, zone, reason), key)

    def _zone(self, channel: str) -> ZoneInfo:
        if channel not in self._plugins:
            raise NotifyError(f"notify: channel '{channel}' is not configured any more")
        return self._zones[channel]

    def _send_all(
        self,
        channel: str,
        done: frozenset[int],
        make: Callable[[Format], Rendered],
        key: str,
        thread: Mapping[str, str] | None = None,
    ) -> None:
        """Try each pending target; raise with the set that succeeded if any failed.

        A message that cannot be rendered (a bug, or feed data the renderer does not
        survive) is that target's failure like a refusal: the other targets still get
        theirs, and the NotifyError's cause is the first such exception, so the
        courier can show its traceback.
        """
        delivered = set(done)
        errors = []
        bug: Exception | None = None
        for index, plugin in enumerate(self._plugins[channel]):
            if index in done:
                continue
            if plugin is None:
                errors.append("a URL of this channel is not usable any more")
                continue
            try:
                message = make(plugin_format(plugin))
            except Exception as e:  # containment: one message's rendering, not the pass
                errors.append(f"notify: {channel}: cannot render the message: {type(e).__name__}: {e}")
                bug = bug or e
                continue
            try:
                self._send_one(channel, plugin, message, key, thread or {})
            except NotifyError as e:
                errors.append(str(e))
                cause = e.__cause__
                bug = bug or (cause if isinstance(cause, Exception) else None)
                continue
            delivered.add(index)
        if errors:
            raise NotifyError(self._redact("; ".join(errors)), delivered=frozenset(delivered)) from bug

    def _send_one(
        self, channel: str, plugin: Any, message: Rendered, key: str, thread: Mapping[str, str]
    ) -> None:
        where = str(plugin.url(privacy=True)).split("?", 1)[0]
        with self._sending[id(plugin)], _capture.capture() as lines:
            _stamp(plugin, key, thread)
            try:
                ok = plugin.notify(
                    body=message.body,
                    title=_title_for(plugin, message),
                    notify_type=apprise.NotifyType.INFO,
                    body_format=apprise.NotifyFormat(message.format),
                )
            except Exception as e:  # a plugin may raise anything; it is this channel's failure
                raise NotifyError(f"notify: {channel} ({where}): {type(e).__name__}: {e}") from e
        if not ok:
            reason = one_line(" ".join(lines), 300) or "the service refused the message"
            raise NotifyError(f"notify: {channel} ({where}): {reason}")
        log.debug("sent channel=%s target=%s", channel, where)


def _title_for(plugin: Any, message: Rendered) -> str:
    """The title as the plugin gets it. A service with no title field of its own
    (``title_maxlen`` 0: Google Chat, Rocket.Chat, Webex, Evolution...) gets it from
    Apprise inside the body, as a heading in the body's format and as written: a feed
    title holding ``[x](https://...)`` or ``<users/all>`` then became a link or a mention
    there. For those, the title is escaped for the body's format first."""
    if getattr(plugin, "title_maxlen", None) != 0 or not message.title:
        return message.title
    if message.format == "markdown":
        return md_escape(message.title)
    if message.format == "html":
        return html.escape(message.title)
    return message.title


def _bounded(plugin: Any, timeout: float) -> Any:
    """Cap a plugin's socket timeouts at ``delivery.timeout`` (a URL may set lower ones)."""
    for name in ("socket_connect_timeout", "socket_read_timeout"):
        current = getattr(plugin, name, None)
        if isinstance(current, int | float):
            setattr(plugin, name, min(current, timeout))
    return plugin


def thread_headers(alert: Alert) -> dict[str, str]:
    """Mail threading for a story: every message of one story references the same id, and
    an update replies to it, so mail clients file the updates under the first alert
    (``References`` and ``In-Reply-To``; Gmail threads on the ``Re:`` subject too)."""
    if alert.story is None:
        return {}
    reference = f"<monitor-story-{alert.story.id}@monitor.invalid>"
    headers = {STORY_HEADER: str(alert.story.id), "References": reference}
    if alert.kind == "update":
        headers["In-Reply-To"] = reference
    return headers


def _stamp(plugin: Any, key: str, thread: Mapping[str, str]) -> None:
    """Put the stable message key where a receiver can see it: a header, a JSON field;
    and the story's threading headers (or remove the previous message's)."""
    headers = getattr(plugin, "headers", None)
    if isinstance(headers, dict):
        headers[IDENTITY_HEADER] = key
        for name in THREAD_HEADERS:
            headers.pop(name, None)
        headers.update(thread)
    extras = getattr(plugin, "payload_extras", None)
    if isinstance(extras, dict):
        extras[IDENTITY_FIELD] = key
        extras.pop(STORY_FIELD, None)
        if STORY_HEADER in thread:
            extras[STORY_FIELD] = thread[STORY_HEADER]


def plugin_format(plugin: Any) -> Format:
    """The body format a plugin wants (its ``?format=`` override, else its default)."""
    resolve = getattr(plugin, "resolve_format", None)
    declared = resolve(None) if callable(resolve) else plugin.notify_format
    if isinstance(declared, tuple | list):
        declared = declared[0]
    value = getattr(declared, "value", declared)
    return _FORMATS.get(str(value), "text")
