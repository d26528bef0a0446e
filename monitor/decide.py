"""The decisions of a poll, pure: when to poll next, which entries are new enough to
alert, whether a body needs parsing. ``pipeline`` does the I/O around them.

Every number from outside (a server's ``max-age`` or ``Retry-After``, an RSS
``<ttl>``) is clamped here to the longest wait the configuration allows, so no
publisher can silence a feed for longer than ``poll.max_backoff`` (or the feed's own
interval, when that is longer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from monitor.config import PollSettings, Settings
from monitor.models import Entry, FeedState, Fetched

MAX_DOUBLINGS = 16


def longest_wait(settings: Settings) -> timedelta:
    """The longest time any feed may legitimately wait for its next poll."""
    intervals = [settings.feed_interval(f) for f in settings.feeds]
    return max([settings.poll.max_backoff, settings.poll.interval, *intervals])


def hinted_seconds(value: float | None) -> float | None:
    """A wait a publisher asked for, in seconds: None unless a finite number >= 0."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


def polite_interval(interval: timedelta, max_age: float | None, poll: PollSettings) -> timedelta:
    """The feed's interval, or longer when the server's ``max-age`` (or ``<ttl>``) asks
    for slower polling; never past ``poll.max_backoff`` (a server asking for a week must
    not silence a feed for a week)."""
    hint = hinted_seconds(max_age)
    if not poll.honor_cache_hints or hint is None:
        return interval
    cap = max(poll.max_backoff, interval)
    return max(interval, min(_seconds(hint, cap), cap))


def error_backoff(
    interval: timedelta, failures: int, cap: timedelta, retry_after: float | None = None
) -> timedelta:
    """Next poll after ``failures`` consecutive errors: interval x 2^(n-1), capped.

    A server's Retry-After wins when it asks for longer, up to the same cap.
    """
    limit = max(cap, interval)
    delay = min(interval * (1 << min(max(failures, 1) - 1, MAX_DOUBLINGS)), limit)
    hint = hinted_seconds(retry_after)
    if hint is not None:
        delay = max(delay, _seconds(hint, limit))
    return delay


def _seconds(value: float, cap: timedelta) -> timedelta:
    """``value`` seconds, or ``cap`` when it is more (timedelta overflows past 10^9 days)."""
    return cap if value >= cap.total_seconds() else timedelta(seconds=value)


def unchanged(feed: FeedState, fetched: Fetched, body_hash: str) -> bool:
    """The body is the one parsed last time (a server that sends no validators)."""
    return body_hash == feed.body_hash and not feed.first_poll


def alertable(entries: Sequence[Entry], first_poll: bool, poll: PollSettings, now: datetime) -> list[Entry]:
    """Which new entries may alert: all, except on a feed's first poll (``poll.first_poll``)."""
    if not first_poll or poll.first_poll == "all":
        return list(entries)
    if poll.first_poll == "none":
        return []
    cutoff = before(now, poll.recent_window)
    return [e for e in entries if e.dated and e.published >= cutoff]


def within_retention(entries: Sequence[Entry], horizon: timedelta | None, now: datetime) -> list[Entry]:
    """Drop dated entries older than ``retention.alerts``: their alert may have been
    pruned, and sending it again would be a duplicate."""
    if horizon is None:
        return list(entries)
    cutoff = before(now, horizon)
    return [e for e in entries if not (e.dated and e.published < cutoff)]


def before(now: datetime, span: timedelta) -> datetime:
    """``now - span``, or the earliest time there is when that is before year 1."""
    try:
        return now - span
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)
