"""One poll of one feed: fetch -> parse -> which entries are new -> match -> store -> deliver.

``poll_feed`` is the one place that turns a FeedError into data (recorded on the feed
row) and writes the poll's log line. All network I/O of the poll happens before the
single transaction that stores the articles, matches and outbox rows.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.config import FeedSpec, PollSettings, Settings, format_duration
from monitor.deliver import Courier
from monitor.errors import FeedError, GoneError
from monitor.fetch import Fetcher
from monitor.health import assess, typical_gap
from monitor.match import Matcher
from monitor.models import Entry, FeedState, Fetched, NotModified, ParsedFeed, PollOutcome
from monitor.pages import Extractor, extract_here, with_pages
from monitor.parse import parse
from monitor.store import PollResult, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollDeps:
    """Everything a poll needs, built once per configuration by the app."""

    settings: Settings
    fetcher: Fetcher
    store: Store
    matcher: Matcher
    courier: Courier
    clock: Callable[[], datetime]
    parser: Callable[[Fetched], ParsedFeed] = parse
    extractor: Extractor = extract_here

    def spec(self, url: str) -> FeedSpec | None:
        """The configured feed with this URL."""
        return next((f for f in self.settings.feeds if f.url == url), None)

    def routes(self) -> Mapping[str, Sequence[str]]:
        """Rule name -> channels to notify."""
        return {rule.name: rule.notify for rule in self.settings.rules}


def poll_feed(feed: FeedState, deps: PollDeps) -> PollOutcome:
    """Poll one feed end to end; never raises for a feed's own failures."""
    started = time.perf_counter()
    now = deps.clock()
    spec = deps.spec(feed.url)
    interval = deps.settings.feed_interval(spec) if spec else deps.settings.poll.interval
    outcome = _poll_and_record(feed, deps, now, spec, interval, started)
    check_health(feed, deps, now)
    return outcome


def _poll_and_record(
    feed: FeedState,
    deps: PollDeps,
    now: datetime,
    spec: FeedSpec | None,
    interval: timedelta,
    started: float,
) -> PollOutcome:
    try:
        outcome = _poll(feed, deps, now, spec, interval)
    except GoneError as e:
        deps.store.disable(feed.id, str(e), now)
        log.error('poll feed="%s" status=disabled error="%s" (remove it from the config)', feed.name, e)
        return _timed(PollOutcome(feed=feed.name, status="error", error=str(e)), started)
    except FeedError as e:
        delay = error_backoff(interval, feed.error_count + 1, deps.settings.poll.max_backoff, e.retry_after)
        failures = deps.store.record_failure(feed.id, str(e), now, now + delay)
        outcome = PollOutcome(feed=feed.name, status="error", error=str(e))
        log.warning(
            'poll feed="%s" status=error failures=%d retry_in=%s error="%s"',
            feed.name,
            failures,
            format_duration(delay),
            e,
        )
        return _timed(outcome, started)
    outcome = _timed(outcome, started)
    log.info(
        'poll feed="%s" status=%s new=%d matched=%d sent=%d failed=%d ms=%.0f',
        feed.name,
        outcome.status,
        outcome.new,
        outcome.matched,
        outcome.sent,
        outcome.failed,
        outcome.duration_ms,
    )
    return outcome


def _poll(
    feed: FeedState, deps: PollDeps, now: datetime, spec: FeedSpec | None, interval: timedelta
) -> PollOutcome:
    started = time.perf_counter()
    fetched = deps.fetcher.fetch(feed.address, etag=feed.etag, last_modified=feed.last_modified, now=now)
    fetch_ms = (time.perf_counter() - started) * 1000
    next_poll = now + polite_interval(interval, fetched.max_age, deps.settings.poll)
    if isinstance(fetched, NotModified):
        deps.store.record_unchanged(feed.id, now, next_poll)
        return PollOutcome(feed=feed.name, status="not_modified", fetch_ms=fetch_ms)
    if fetched.moved_to and fetched.moved_to != feed.address:
        deps.store.record_moved(feed.id, fetched.moved_to)
        log.warning(
            'poll feed="%s" moved permanently to="%s" (update config.yaml)', feed.name, fetched.moved_to
        )
    body_hash = hashlib.sha256(fetched.body).hexdigest()
    if body_hash == feed.body_hash and not feed.first_poll:
        deps.store.record_unchanged(feed.id, now, next_poll)
        return PollOutcome(feed=feed.name, status="not_modified", fetch_ms=fetch_ms)
    parsed = deps.parser(fetched)
    if parsed.ttl is not None:
        next_poll = max(next_poll, now + polite_interval(interval, parsed.ttl, deps.settings.poll))
    if parsed.warning:
        log.debug('parse feed="%s" warning="%s"', feed.name, parsed.warning)
    known = deps.store.known_keys(feed.id, [e.key for e in parsed.entries])
    new = [e for e in parsed.entries if e.key not in known]
    candidates = alertable(new, feed.first_poll, deps.settings.poll, now)
    horizon = deps.settings.retention.alerts
    if horizon is not None:  # an alert older than this may have been pruned: never send it again
        candidates = [e for e in candidates if not (e.dated and e.published < now - horizon)]
    if candidates and spec is not None and spec.full_text != "never":
        candidates = with_pages(candidates, spec.full_text, deps, now, origin=feed.address)
        enriched = {e.key: e for e in candidates}
        new = [enriched.get(e.key, e) for e in new]
    matches = {e.key: found for e in candidates if (found := deps.matcher.match(e, feed.name))}
    saved = deps.store.save_poll(
        feed.id,
        PollResult(
            etag=fetched.etag, last_modified=fetched.last_modified, title=parsed.title, body_hash=body_hash
        ),
        new,
        matches,
        deps.routes(),
        now,
        next_poll,
        deps.settings.digest_holds(now),
    )
    report = deps.courier.deliver(ids=saved.delivery_ids) if saved.delivery_ids else None
    return PollOutcome(
        feed=feed.name,
        status="ok",
        new=saved.new,
        matched=saved.matched,
        queued=saved.queued,
        sent=report.sent if report else 0,
        failed=report.failed if report else 0,
        rules=tuple(m.rule for found in matches.values() for m in found),
        fetch_ms=fetch_ms,
    )


def check_health(feed: FeedState, deps: PollDeps, now: datetime) -> None:
    """After a poll: did the feed start failing, go silent, or recover? Tell once."""
    status = deps.store.feed_status(feed.id)
    gap = typical_gap(deps.store.recent_published(feed.id))
    health, reason = assess(status, gap, now, deps.settings.health)
    if health == status.health:
        return
    channel = deps.settings.health.channel
    notice = None
    if channel is not None:
        if health == "ok":
            notice = (
                channel,
                f"{feed.name} has recovered",
                f"{feed.name} is healthy again (was {status.health}).",
            )
        else:
            notice = (channel, f"{feed.name} is {health}", f"{feed.name}: {reason}")
    deps.store.set_health(feed.id, health, notice, now)
    log.warning('health feed="%s" from=%s to=%s reason="%s"', feed.name, status.health, health, reason)


def alertable(entries: Sequence[Entry], first_poll: bool, poll: PollSettings, now: datetime) -> list[Entry]:
    """Which new entries may alert: all, except on a feed's first poll (``poll.first_poll``)."""
    if not first_poll or poll.first_poll == "all":
        return list(entries)
    if poll.first_poll == "none":
        return []
    cutoff = now - poll.recent_window
    return [e for e in entries if e.dated and e.published >= cutoff]


def polite_interval(interval: timedelta, max_age: float | None, poll: PollSettings) -> timedelta:
    """The feed's interval, or longer when the server's ``max-age`` asks for slower polling.

    A hint never stretches the interval past ``poll.max_backoff`` (a server asking for
    a week must not silence a feed for a week).
    """
    if not poll.honor_cache_hints or max_age is None:
        return interval
    return max(interval, min(timedelta(seconds=max_age), max(poll.max_backoff, interval)))


def error_backoff(
    interval: timedelta, failures: int, cap: timedelta, retry_after: float | None = None
) -> timedelta:
    """Next poll after ``failures`` consecutive errors: interval x 2^(n-1), capped.

    A server's Retry-After wins when it asks for longer.
    """
    delay = min(interval * (1 << min(failures - 1, 16)), max(cap, interval))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def _timed(outcome: PollOutcome, started: float) -> PollOutcome:
    return replace(outcome, duration_ms=(time.perf_counter() - started) * 1000)
