"""Notifications: render alerts per format and send them through Apprise."""

from monitor.notify.notifier import AppriseNotifier, Notifier, plugin_format
from monitor.notify.render import Format, Rendered, render
from monitor.notify.targets import check_url, redact, register_builtin_targets

__all__ = [
    "AppriseNotifier",
    "Format",
    "Notifier",
    "Rendered",
    "check_url",
    "plugin_format",
    "redact",
    "register_builtin_targets",
    "render",
]
