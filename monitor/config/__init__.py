"""Configuration: config.yaml -> validated, frozen Settings (see ``loader``)."""

from monitor.config.durations import format_duration, parse_duration
from monitor.config.listen import listen_address
from monitor.config.loader import UrlCheck, load_settings
from monitor.config.schema import (
    ChannelSpec,
    DeliverySettings,
    FeedSpec,
    FetchSettings,
    HealthSettings,
    PollSettings,
    RetentionSettings,
    SemanticSettings,
    Settings,
    StoriesSettings,
    TemplateSpec,
    WatchRule,
)

__all__ = [
    "ChannelSpec",
    "DeliverySettings",
    "FeedSpec",
    "FetchSettings",
    "HealthSettings",
    "PollSettings",
    "RetentionSettings",
    "SemanticSettings",
    "Settings",
    "StoriesSettings",
    "TemplateSpec",
    "UrlCheck",
    "WatchRule",
    "format_duration",
    "listen_address",
    "load_settings",
    "parse_duration",
]
