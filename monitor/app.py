"""Composition root: builds the fetcher, store, notifier and matcher from Settings."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from monitor import about_job
from monitor.about_job import AboutReport
from monitor.config import Settings
from monitor.deliver import Courier, DeliveryReport, Dispatch
from monitor.errors import MonitorError
from monitor.extract_pool import ExtractPool
from monitor.faults import Faults, describe
from monitor.fetch import Fetcher
from monitor.generations import Closer, Generations
from monitor.match import Matcher
from monitor.metrics import Metrics
from monitor.models import FeedState, Fetched, ParsedFeed, PollOutcome
from monitor.notify import AppriseNotifier, Notifier
from monitor.parse_pool import ParsePool
from monitor.pipeline import PollDeps, poll_feed
from monitor.store import Store
from monitor.stories import WordfreqStats, lexicon

if TYPE_CHECKING:
    from monitor.meaning import Meaning, ModelLoader

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The real clock, UTC-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CycleReport:
    """One ``run --once`` cycle."""

    outcomes: tuple[PollOutcome, ...]
    delivery: DeliveryReport
    about: AboutReport = field(default_factory=AboutReport)  # what the about job judged after the polls

    @property
    def rules(self) -> list[str]:
        """Every rule that matched in this cycle, by words in the polls or by meaning after them."""
        return [*(r for o in self.outcomes for r in o.rules), *self.about.rules]


RESTART_ONLY = ("database_upgrade",)
"""Settings read once when the daemon starts."""
PARSE_POOL = ("fetch.parse_timeout", "fetch.parse_workers", "fetch.max_bytes", "poll.concurrency")
PAGE_POOL = ("fetch.page_timeout", "fetch.page_workers")
"""The settings each worker pool is built from: a reload that changes one builds a new pool."""


def restart_needed(old: Settings, new: Settings) -> list[str]:
    """The changed settings (dotted names) that a running daemon cannot apply."""
    return changed(old, new, RESTART_ONLY)


def changed(old: Settings, new: Settings, names: Sequence[str]) -> list[str]:
    """Those of these settings (dotted names) whose value differs."""
    return [name for name in names if _setting(old, name) != _setting(new, name)]


def _setting(settings: Settings, dotted: str) -> object:
    value: object = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


class App:
    """The running program: one store, one HTTP client, one notifier per configuration."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        fetcher: Fetcher,
        notifier: Notifier,
        *,
        clock: Callable[[], datetime] = utc_now,
        strict: bool = False,
        parser: Callable[[Fetched], ParsedFeed] | None = None,
        embedder: ModelLoader | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder  # loads the about rules' model (None: the shared one)
        self.clock = clock
        self.strict = strict
        self.parse_pool = ParsePool.for_settings(settings)
        self._own_parser = parser is None
        self.parser: Callable[[Fetched], ParsedFeed] = parser or self.parse_pool.parse
        self.extract_pool = ExtractPool.for_settings(settings)
        self._lock = threading.Lock()
        self.metrics = Metrics()
        self.faults = Faults()
        # Word frequencies for story assignment, read once per language; English now,
        # so the first matched article's poll does not pay for it.
        self.story_stats = WordfreqStats()
        lexicon(self.story_stats.zipf_table("en"))  # and the sets read from it
        self.dispatch = Dispatch()  # lanes per channel: kept across reloads
        self.metrics.watch_database(store.feed_statuses, store.channel_statuses, store.about_backlog)
        deps = self._assemble(settings, fetcher, notifier)
        self.settings, self.fetcher, self.notifier, self.courier = settings, fetcher, notifier, deps.courier
        self._generations = Generations(deps)

    @property
    def deps(self) -> PollDeps:
        """What a poll that starts now uses."""
        return self._generations.current

    def _assemble(self, settings: Settings, fetcher: Fetcher, notifier: Notifier) -> PollDeps:
        """Build everything that depends on the configuration (the caller swaps it in)."""
        courier = Courier(
            self.store,
            notifier,
            settings.delivery,
            self.clock,
            settings.channels,
            observe=self.metrics.observe_delivery,
            dispatch=self.dispatch,
            redact=settings.redactor(),
        )
        return PollDeps(
            settings,
            fetcher,
            self.store,
            Matcher.for_settings(settings),
            courier,
            self.clock,
            self.parser,
            extractor=self.extract_pool.extract,
            faults=self.faults,
            strict=self.strict,
            story_stats=self.story_stats,
            meaning=self._meaning(settings),
        )

    def _meaning(self, settings: Settings) -> Meaning | None:
        """The about rules, prepared on first use; None (no model, no numpy) without them."""
        if not settings.about_rules():
            return None
        from monitor.meaning import Meaning, shared_embedder  # only configs with about rules

        return Meaning.for_settings(settings, load=self.embedder or shared_embedder)

    def reload(self, settings: Settings, notifier: Notifier | None = None) -> list[str]:
        """Switch to a new configuration; polls in flight finish with the old one.

        Returns the changed settings that take effect only after a restart (they are
        named in the reload's log line). The database cannot change under a running
        daemon: that is refused.
        """
        if settings.database != self.settings.database:
            raise MonitorError("reload: the database cannot change while running; restart monitor")
        pending = restart_needed(self.settings, settings)
        fetcher, retired = self.fetcher, []
        if settings.fetch != self.settings.fetch:
            retired.append(fetcher.close)
            fetcher = Fetcher(settings.fetch)
        retired += self._rebuild_pools(settings)
        notifier = notifier or AppriseNotifier(settings)
        deps = self._assemble(settings, fetcher, notifier)
        with self._lock:  # swapped at once; ``retired`` closes when no poll of the old one runs
            self.settings, self.fetcher, self.notifier, self.courier = (
                settings,
                fetcher,
                notifier,
                deps.courier,
            )
            self._generations.replace(deps, retired)
        self.sync_feeds()
        return pending

    def _rebuild_pools(self, settings: Settings) -> list[Closer]:
        """New worker pools for changed pool settings; the old ones retire (calls in
        flight finish in them, their workers stop) and close when no old poll runs."""
        retired: list[Closer] = []
        if changed(self.settings, settings, PARSE_POOL):
            retired.append(self.parse_pool.close)
            self.parse_pool.retire()
            self.parse_pool = ParsePool.for_settings(settings)
            if self._own_parser:
                self.parser = self.parse_pool.parse
        if changed(self.settings, settings, PAGE_POOL):
            retired.append(self.extract_pool.close)
            self.extract_pool.retire()
            self.extract_pool = ExtractPool.for_settings(settings)
        return retired

    def use_deps(self, deps: PollDeps) -> None:
        """Polls that start from now on use ``deps`` (a seam for benchmarks and tests)."""
        self._generations.replace(deps)

    @property
    def retired_pending(self) -> int:
        """Old clients and pools a reload retired that some poll still uses."""
        return self._generations.pending

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        transport: httpx.BaseTransport | None = None,
        notifier: Notifier | None = None,
        strict: bool = False,
        upgrade: bool | None = None,
        parser: Callable[[Fetched], ParsedFeed] | None = None,
        embedder: ModelLoader | None = None,
    ) -> App:
        """Open the database and build every part; the caller closes the App.

        ``upgrade=False`` never migrates an existing database (commands that only look
        or send must not change the schema under a running daemon of another version).
        ``parser`` replaces the parse pool, ``embedder`` loads the about rules' model
        (seams for tests).
        """
        auto = settings.database_upgrade == "auto"
        store = Store.open(settings.database, upgrade=auto if upgrade is None else upgrade and auto)
        fetcher = Fetcher(settings.fetch, transport=transport)
        return cls(
            settings,
            store,
            fetcher,
            notifier or AppriseNotifier(settings),
            clock=clock,
            strict=strict,
            parser=parser,
            embedder=embedder,
        )

    def close(self) -> None:
        """Release the HTTP clients and database connections (after one last try to
        record the sends the store refused to record: the next process would not know them)."""
        self._settle_before_exit()
        self._generations.close()
        self.fetcher.close()
        for pool in (self.parse_pool, self.extract_pool):
            pool.close()
        self.store.close()

    def _settle_before_exit(self) -> None:
        """One more try to record the unrecorded sends, waiting at most a send's timeout
        for a thread that is settling (a hung database must not hold the exit); the
        ones left are named, since the next process would send them again."""
        unsettled = self.dispatch.unsettled
        if not len(unsettled):
            return
        try:
            self.courier.settle_earlier(wait=self.settings.delivery.timeout.total_seconds())
        except Exception as e:  # closing goes on whatever the store does
            self.faults.log(log, e, "deliver status=unsettled at exit")
        left = unsettled.take()
        for sent in left:
            ids = [a.delivery_id for a in sent.alerts]
            log.warning(
                "deliver claim=%s deliveries=%s unsettled at exit (may be sent again)", sent.token, ids
            )
        unsettled.done(left)

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sync_feeds(self) -> None:
        """Make the feeds table match the config."""
        self.store.sync_feeds([(f.name, f.url) for f in self.settings.feeds], self.clock())

    def poll_one(self, feed: FeedState) -> PollOutcome:
        """Poll one feed (``poll_feed`` records the feed's own failures).

        The last resort: a bug in recording a failure is logged and the daemon lives on;
        the feed's lease then expires by itself.
        """
        try:
            with self._generations.use() as deps:
                outcome = poll_feed(feed, deps)
        except Exception as e:
            if self.strict:
                raise
            self.faults.log(log, e, f'poll feed="{feed.name}" status=crash')
            outcome = PollOutcome(
                feed=feed.name, status="error", error=describe(e), error_kind=type(e).__name__
            )
        self.metrics.observe_poll(outcome)
        return outcome

    def poll(self, feeds: Sequence[FeedState]) -> list[PollOutcome]:
        """Poll feeds concurrently (``poll.concurrency`` threads); results in input order."""
        if not feeds:
            return []
        workers = min(self.settings.poll.concurrency, len(feeds))
        with ThreadPoolExecutor(workers, thread_name_prefix="poll") as pool:
            return list(pool.map(self.poll_one, feeds))

    def run_once(self) -> CycleReport:
        """Poll every active feed once, then send everything that is due."""
        owner = f"once:{os.getpid()}"
        outcomes = self.poll_all(owner)
        about = self.judge_about(owner)
        return CycleReport(tuple(outcomes), self.courier.deliver(limit=10_000), about)

    def poll_all(self, owner: str) -> list[PollOutcome]:
        """Poll every active feed once, whatever its schedule says (``run_once``'s polls)."""
        self.sync_feeds()
        lease = self.settings.poll.lease
        feeds = self.store.claim_feeds(self.clock(), lease, owner, 1_000_000, due_only=False)
        return self.poll(feeds)

    def judge_about(
        self,
        owner: str,
        *,
        stop: Callable[[], bool] = lambda: False,
        budget: float | None = None,
        batch: int = about_job.BATCH,
    ) -> AboutReport:
        """Drain the about queue (``monitor.about_job``): every due article, or until
        ``stop()`` or ``budget`` seconds, ``batch`` articles a claim; each batch with the
        configuration current when it starts; the alerts go out as each batch is stored."""
        report = about_job.drain(self._generations.use, owner, stop=stop, budget=budget, batch=batch)
        self.metrics.observe_about(report)
        return report
