"""Prometheus metrics: counters the daemon moves, gauges read from the database at scrape.

One registry per App (not the global default) so tests and reloads stay isolated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.models import PollOutcome

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from monitor.models import ChannelStatus, FeedStatus


class DeliveryOutcome(Protocol):
    """What a delivery attempt tells the metrics (``deliver.Outcome`` has it)."""

    @property
    def channel(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def error_type(self) -> str | None: ...


class AboutOutcome(Protocol):
    """What a run of the about job tells the metrics (``about_job.AboutReport`` has it)."""

    @property
    def judged(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def gave_up(self) -> int: ...

    @property
    def rules(self) -> tuple[str, ...]: ...


class Backlog(Protocol):
    """The about queue at a glance (``Store.about_backlog``)."""

    @property
    def pending(self) -> int: ...

    @property
    def gave_up(self) -> int: ...


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _DatabaseCollector(Collector):
    """Dead letters, pending deliveries and last success per feed, read at scrape time."""

    def __init__(
        self,
        feeds: Callable[[], list[FeedStatus]],
        channels: Callable[[], list[ChannelStatus]],
        about: Callable[[], Backlog] | None = None,
    ) -> None:
        self._feeds = feeds
        self._channels = channels
        self._about = about

    def collect(self) -> Iterable[Metric]:
        success = GaugeMetricFamily(
            "monitor_feed_last_success_timestamp_seconds",
            "When each feed was last polled successfully (Unix time).",
            labels=["feed"],
        )
        for feed in self._feeds():
            if feed.active and feed.last_success_at is not None:
                success.add_metric([feed.name], feed.last_success_at.timestamp())
        queue = GaugeMetricFamily(
            "monitor_deliveries",
            "Deliveries in the outbox by channel and state.",
            labels=["channel", "state"],
        )
        dead = GaugeMetricFamily(
            "monitor_dead_letters", "Deliveries that ran out of retries.", labels=["channel"]
        )
        for c in self._channels():
            for state, count in (
                ("pending", c.pending),
                ("retrying", c.retrying),
                ("sent", c.sent),
                ("dead", c.dead),
            ):
                queue.add_metric([c.channel, state], count)
            dead.add_metric([c.channel], c.dead)
        families = [success, queue, dead]
        if self._about is not None:
            backlog = self._about()
            waiting = GaugeMetricFamily(
                "monitor_about_queue",
                "Articles waiting for the about rules' model, and those it gave up on.",
                labels=["state"],
            )
            waiting.add_metric(["pending"], backlog.pending)
            waiting.add_metric(["gave_up"], backlog.gave_up)
            families.append(waiting)
        return families


class Metrics:
    """Every metric monitor exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("monitor_polls", "Feed polls by outcome.", ["status"], registry=r)
        self.poll_errors = Counter(
            "monitor_poll_errors",
            "Failed feed polls by the failure's type (FetchError, ParseError, a bug's type...).",
            ["kind"],
            registry=r,
        )
        self.dropped = Counter(
            "monitor_entries_dropped", "Entries left out of a poll (each recorded with why).", registry=r
        )
        self.poll_seconds = Histogram(
            "monitor_poll_seconds",
            "Time to poll one feed (fetch, parse, store, match).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.fetch_seconds = Histogram(
            "monitor_fetch_seconds",
            "Time to fetch a feed (successful fetches, 304 included).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.articles = Counter("monitor_articles_stored", "New articles stored.", registry=r)
        self.matches = Counter("monitor_matches", "Articles matched, by rule.", ["rule"], registry=r)
        self.deliveries = Counter(
            "monitor_delivery_attempts",
            "Delivery attempts by channel and result.",
            ["channel", "result"],
            registry=r,
        )
        self.delivery_failures = Counter(
            "monitor_delivery_failures",
            "Failed delivery attempts by channel and error type (NotifyError, or the bug's type).",
            ["channel", "error"],
            registry=r,
        )
        self.about = Counter(
            "monitor_about_articles",
            "Articles the about job judged by meaning, by result (judged, failed, gave_up).",
            ["result"],
            registry=r,
        )
        self.reloads = Counter("monitor_config_reloads", "Config reloads by result.", ["result"], registry=r)
        self.last_tick = Gauge(
            "monitor_scheduler_last_tick_timestamp_seconds",
            "When the poll tick last ran (Unix time).",
            registry=r,
        )

    def watch_database(
        self,
        feeds: Callable[[], list[FeedStatus]],
        channels: Callable[[], list[ChannelStatus]],
        about: Callable[[], Backlog] | None = None,
    ) -> None:
        """Export database-backed gauges (read at each scrape)."""
        self.registry.register(_DatabaseCollector(feeds, channels, about))

    def observe_poll(self, outcome: PollOutcome) -> None:
        """Count one poll."""
        self.polls.labels(outcome.status).inc()
        if outcome.error_kind is not None:
            self.poll_errors.labels(outcome.error_kind).inc()
        self.dropped.inc(outcome.dropped)
        self.poll_seconds.observe(outcome.duration_ms / 1000)
        if outcome.fetch_ms is not None:
            self.fetch_seconds.observe(outcome.fetch_ms / 1000)
        self.articles.inc(outcome.new)
        for rule in outcome.rules:
            self.matches.labels(rule).inc()

    def observe_about(self, report: AboutOutcome) -> None:
        """Count one run of the about job (its matches count as the rules' matches)."""
        counts = {"judged": report.judged, "failed": report.failed, "gave_up": report.gave_up}
        for result, count in counts.items():
            if count:
                self.about.labels(result).inc(count)
        for rule in report.rules:
            self.matches.labels(rule).inc()

    def observe_delivery(self, outcome: DeliveryOutcome) -> None:
        """Count one delivery attempt, and its failure by type."""
        self.deliveries.labels(outcome.channel, outcome.status).inc()
        if outcome.error_type is not None:
            self.delivery_failures.labels(outcome.channel, outcome.error_type).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
