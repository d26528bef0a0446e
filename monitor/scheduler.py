"""APScheduler 3 wiring only: the poll tick, the delivery tick, graceful shutdown.

The database decides which feed is due (``next_poll_at``); the poll tick hands due
feeds to a thread pool, skipping feeds whose previous poll is still running.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.app import App
from monitor.config import Settings
from monitor.decide import longest_wait
from monitor.errors import ConfigError, MonitorError, StorageError
from monitor.faults import Faults
from monitor.httpd import StatusServer
from monitor.log import install_redactor
from monitor.models import FeedState
from monitor.store import Pruned

log = logging.getLogger(__name__)
POLL_TICK = timedelta(seconds=2)
DELIVERY_TICK = timedelta(seconds=5)
ABOUT_TICK = timedelta(seconds=2)
ABOUT_BUDGET = 60.0  # seconds of model work per tick; the next tick goes on (a reload, a shutdown in between)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
MAX_POLL_THREADS = 64  # poll.concurrency's upper bound in the config schema
PRUNE_AT = {"hour": 3, "minute": 30}  # daily, UTC: old articles and alerts go (``retention``)
INTERVAL_JOBS = ("poll", "deliver", "about", "leases")
CLOCK_STEP_S = 5.0
"""A wall clock that falls this far behind the monotonic one between two looks (0.25 s
apart) was stepped back: NTP correcting a VM's clock, a restored snapshot."""


class ClockStep:
    """Tells when the wall clock was stepped back, against the monotonic clock.

    APScheduler 3 plans interval jobs on wall time: after a step back of an hour, no
    poll, send or lease renewal would run for that hour. The daemon's loop asks this at
    every turn and, on a step, has the interval jobs run at once (they plan on from there).
    """

    def __init__(self, wall: Callable[[], datetime], monotonic: Callable[[], float] = time.monotonic) -> None:
        self._wall, self._monotonic = wall, monotonic
        self._last = (self._monotonic(), self._wall())

    def stepped_back(self) -> float:
        """Seconds the wall clock lost since the last look (0.0 when it kept time)."""
        now = (self._monotonic(), self._wall())
        (mono_then, wall_then), self._last = self._last, now
        lost = (now[0] - mono_then) - (now[1] - wall_then).total_seconds()
        return lost if lost >= CLOCK_STEP_S else 0.0


class Daemon:
    """Runs an App until ``stop`` is set, then finishes in-flight polls and returns."""

    def __init__(
        self,
        app: App,
        *,
        poll_tick: timedelta = POLL_TICK,
        delivery_tick: timedelta = DELIVERY_TICK,
        load_config: Callable[[], Settings] | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self._wall = wall  # the wall clock the job scheduler plans on (a test steps it)
        self._load_config = load_config
        self._reload_wanted = threading.Event()
        self.reloads = 0
        self.reload_failures = 0
        self._faults = Faults()  # a bug in a reload: its traceback once, then one line
        self._last_tick: float | None = None
        self.http: StatusServer | None = None
        self._poll_tick = poll_tick
        self._delivery_tick = delivery_tick
        # As many threads as poll.concurrency may ever allow; how many run at once is
        # read from the current settings at each claim, so a reload can change it.
        self._pool = ThreadPoolExecutor(MAX_POLL_THREADS, thread_name_prefix="poll")
        self._jobs = _RunningJobs()
        self._in_flight: dict[int, FeedState] = {}  # feed id -> the claim being polled
        self._futures: list[Future[None]] = []
        self._claiming = threading.Lock()
        self._stopping = False
        self.abandoned = 0
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self.ticks = 0

    def run(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set; shut down gracefully."""
        self.app.sync_feeds()
        if self.app.store.dialect == "sqlite":  # one daemon per file (instance_lock)
            store = self.app.store
            released = store.release_claims() + store.release_feeds() + store.release_about_claims()
            if released:
                log.info("daemon released=%d stale leases from a previous run", released)
        scheduler = BackgroundScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
        now = self.app.clock()
        scheduler.add_job(
            self.poll_due,
            IntervalTrigger(seconds=self._poll_tick.total_seconds()),
            next_run_time=now,
            id="poll",
        )
        scheduler.add_job(
            self.deliver_due,
            IntervalTrigger(seconds=self._delivery_tick.total_seconds()),
            next_run_time=now,
            id="deliver",
        )
        scheduler.add_job(
            self.judge_about,
            IntervalTrigger(seconds=ABOUT_TICK.total_seconds()),
            next_run_time=now,
            id="about",
        )
        scheduler.add_job(self.prune_old, CronTrigger(timezone="UTC", **PRUNE_AT), id="prune")
        keep = max(1.0, self.app.settings.poll.lease.total_seconds() / 3)
        scheduler.add_job(self.renew_leases, IntervalTrigger(seconds=keep), id="leases")
        self.http = self._serve(self.app.settings.http.listen)
        scheduler.start()
        log.info(
            "daemon started feeds=%d rules=%d channels=%d",
            len(self.app.settings.feeds),
            len(self.app.settings.rules),
            len(self.app.settings.channels),
        )
        steps = ClockStep(self._wall)
        try:
            while not stop.wait(0.25):
                lost = steps.stepped_back()
                if lost:
                    log.warning("daemon clock stepped back by %.0fs: the periodic jobs run now", lost)
                    now = self._wall()
                    for job in INTERVAL_JOBS:
                        scheduler.modify_job(job, next_run_time=now)
                if self._reload_wanted.is_set():
                    self._reload_wanted.clear()
                    self.reload()
        finally:
            log.info("daemon stopping: finishing in-flight work")
            if self.http is not None:
                self.http.stop()
            scheduler.shutdown(wait=False)
            self.abandoned = self.close(self.app.settings.shutdown_grace.total_seconds())
            self.app.store.release_feeds(self.owner)
            log.info("daemon stopped abandoned=%d", self.abandoned)

    def _serve(self, listen: str | None) -> StatusServer | None:
        """Start the status server on ``listen`` (None: none)."""
        if not listen:
            return None
        try:
            server = StatusServer(listen, self.health, self.app.metrics.render)
        except OSError as e:
            raise MonitorError(f"http: cannot listen on {listen}: {e.strerror or e}") from e
        server.start()
        return server

    def _move_http(self, listen: str | None) -> None:
        """After a reload: serve on the new ``http.listen`` (the old one stays if it cannot)."""
        current = self.http.listen if self.http is not None else None
        if listen == current:
            return
        new = self._serve(listen)
        if self.http is not None:
            self.http.stop()
        self.http = new

    def request_reload(self) -> None:
        """Ask the main loop to reload the config (safe from signal handlers and threads)."""
        self._reload_wanted.set()

    def reload(self) -> bool:
        """Load and validate the config; switch to it, or keep the running one and say why.

        Whatever goes wrong, the reload is refused and the daemon goes on: an edit of
        config.yaml must never stop it. An exception that is not a ConfigError or a
        MonitorError is a bug: its traceback is logged the first time it is seen
        (``faults``).
        """
        if self._load_config is None:
            return False
        running = self.app.settings
        try:
            settings = self._load_config()  # from here on, the log hides the new file's secrets
            pending = self.app.reload(settings)
            self._move_http(settings.http.listen)
        except ConfigError as e:
            self._refused(running)
            log.error("reload status=refused problems=%d (the running configuration stays)", len(e.problems))
            for problem in e.problems:
                log.error("reload %s", problem)
            return False
        except MonitorError as e:
            self._refused(running)
            log.error('reload status=refused error="%s" (the running configuration stays)', e)
            return False
        except Exception as e:  # the daemon outlives any edit; the bug is logged, not lost
            self._refused(running)
            self._faults.log(log, e, "reload status=refused (the running configuration stays)")
            return False
        hide_new, hide_old = settings.redactor(), running.redactor()  # polls of the old one may still run
        install_redactor(lambda text: hide_new(hide_old(text)))
        self.reloads += 1
        self.app.metrics.reloads.labels("ok").inc()
        log.info(
            "reload status=ok feeds=%d rules=%d channels=%d%s",
            len(settings.feeds),
            len(settings.rules),
            len(settings.channels),
            f" needs_restart={','.join(pending)} (these changes apply after a restart)" if pending else "",
        )
        return True

    def _refused(self, running: Settings) -> None:
        """Count a refused reload; the log hides the running configuration's secrets
        again (loading the refused file had put its own in their place)."""
        install_redactor(running.redactor())
        self.reload_failures += 1
        self.app.metrics.reloads.labels("failed").inc()

    def health(self) -> tuple[bool, dict[str, object]]:
        """Healthy when the poll tick ran recently and the database answers."""
        problems = []
        limit = self._poll_tick.total_seconds() * 3 + JOB_DEFAULTS["misfire_grace_time"]
        age = None if self._last_tick is None else time.monotonic() - self._last_tick
        if age is None or age > limit:
            problems.append("scheduler has not ticked recently" if age else "scheduler has not ticked yet")
        try:
            self.app.store.ping()
        except StorageError as e:
            problems.append(str(e))
        detail: dict[str, object] = {
            "status": "ok" if not problems else "unhealthy",
            "problems": problems,
            "last_tick_seconds_ago": None if age is None else round(age, 1),
        }
        return not problems, detail

    def close(self, grace: float | None = None) -> int:
        """Finish running polls and sends within ``grace`` seconds; start no new ones.

        Returns how many polls (and the delivery job) were still running when the grace
        ran out. A poll's work was never committed, so its feed stays due and the next
        run redoes it; a send's claim expires by its deadline, then the message is due again.
        """
        self._stopping = True
        self.app.dispatch.close()
        deadline = None if grace is None else time.monotonic() + grace
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = [f for f in self._futures if not f.done()]
        _, still = wait(running, timeout=grace)
        jobs = self._jobs.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if still or jobs:
            log.warning(
                "daemon grace of %ss is over: %d poll(s) and %d job(s) abandoned, their work will run again",
                grace,
                len(still),
                jobs,
            )
        return len(still) + jobs

    def poll_due(self) -> int:
        """The tick: claim due feeds for the free poll threads and start them."""
        self.ticks += 1
        self._last_tick = time.monotonic()
        self.app.metrics.last_tick.set_to_current_time()
        return self._claim_and_start()

    def _claim_and_start(self) -> int:
        """Claim as many due feeds as there are free threads; one claimer at a time."""
        if self._stopping or not self._claiming.acquire(blocking=False):
            return 0
        try:
            return self._start_claimed()
        finally:
            self._claiming.release()

    def _start_claimed(self) -> int:
        settings = self.app.settings
        with self._lock:
            room = settings.poll.concurrency - len(self._in_flight)
            busy = list(self._in_flight)
        due = self.app.store.claim_feeds(
            self.app.clock(),
            settings.poll.lease,
            self.owner,
            room,
            horizon=longest_wait(settings),
            exclude=busy,
        )
        started = 0
        for feed in due:
            with self._lock:
                if feed.id in self._in_flight:
                    continue
                self._in_flight[feed.id] = feed
            try:
                future = self._pool.submit(self._poll, feed)
            except RuntimeError:  # shutting down: the lease is released on the way out
                with self._lock:
                    self._in_flight.pop(feed.id, None)
                break
            with self._lock:
                self._futures = [f for f in self._futures if not f.done()] + [future]
            started += 1
        return started

    def _poll(self, feed: FeedState) -> None:
        try:
            self.app.poll_one(feed)
        finally:
            with self._lock:
                self._in_flight.pop(feed.id, None)
        # A thread is free: take the next due feed now rather than at the next tick.
        self._claim_and_start()

    def renew_leases(self) -> list[int]:
        """Keep the feed leases of the polls running now (every third of ``poll.lease``),
        so a slow feed is never polled by a second daemon while this one is at it."""
        with self._lock:
            held = [(f.id, f.lease) for f in self._in_flight.values() if f.lease is not None]
        if not held:
            return []
        try:
            lost = self.app.store.renew_leases(held, self.app.clock() + self.app.settings.poll.lease)
        except StorageError as e:
            log.warning('leases status=error error="%s"', e)
            return []
        for feed_id in lost:
            log.warning(
                "leases feed_id=%d status=lost (another poller has it; this poll's results are dropped)",
                feed_id,
            )
        return lost

    def deliver_due(self) -> None:
        """Send whatever the outbox holds that is due (retries, leftovers); not once stopping."""
        if self._stopping:
            return
        with self._jobs.running():
            try:
                self.app.courier.deliver()
            except StorageError as e:  # the database is away: the next tick tries again
                log.warning('deliver status=error error="%s"', e)

    def judge_about(self) -> None:
        """Judge by meaning what the polls queued (``monitor.about_job``); not once stopping."""
        if self._stopping:
            return
        with self._jobs.running():
            try:
                self.app.judge_about(self.owner, stop=lambda: self._stopping, budget=ABOUT_BUDGET)
            except StorageError as e:  # the database is away: the claim expires, the next tick tries
                log.warning('about status=error error="%s"', e)
            except Exception as e:  # a bug: its traceback once, the queue waits for the next tick
                self._faults.log(log, e, "about job")

    def prune_old(self) -> Pruned:
        """Delete the articles and alerts that ``retention`` lets go (the daily job); a
        shutdown stops it between two batches."""
        retention = self.app.settings.retention
        now = self.app.clock()
        with self._jobs.running():
            stop = lambda: self._stopping  # noqa: E731
            pruned = self.app.store.prune(now, retention.articles, retention.alerts, stop=stop)
            self.app.store.expire_stories(now - self.app.settings.stories.window)
        log.info(
            "prune articles=%d alerts=%d deliveries=%d",
            pruned.articles,
            pruned.matches,
            pruned.deliveries,
        )
        return pruned


class _RunningJobs:
    """The scheduler's jobs (delivery, prune) running now, so shutdown can wait for them
    within its grace, and say how many it had to abandon."""

    def __init__(self) -> None:
        self._running = 0
        self._idle = threading.Condition()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Count a job while it runs."""
        with self._idle:
            self._running += 1
        try:
            yield
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def wait(self, timeout: float | None) -> int:
        """Wait up to ``timeout`` seconds for the running jobs; how many still run."""
        with self._idle:
            self._idle.wait_for(lambda: self._running == 0, timeout)
            return self._running
