"""Feed health, pure: is a feed failing for too long, or silent for longer than usual?

"Usual" is learned per feed: the median gap between its recent articles, times
``health.silent_factor``, and never less than ``health.silent_after``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median
from typing import Literal

from monitor.config import HealthSettings
from monitor.models import FeedState, FeedStatus

Health = Literal["ok", "failing", "silent", "disabled"]


def typical_gap(published: Sequence[datetime]) -> timedelta | None:
    """Median time between consecutive articles; None with fewer than three."""
    ordered = sorted(published)
    gaps = [b - a for a, b in pairwise(ordered) if b > a]
    if len(gaps) < 2:
        return None
    return timedelta(seconds=median(g.total_seconds() for g in gaps))


def silent_threshold(gap: timedelta | None, settings: HealthSettings) -> timedelta:
    """How long without a new article counts as silent for this feed."""
    if gap is None:
        return settings.silent_after
    return max(settings.silent_after, gap * settings.silent_factor)


def assess(
    feed: FeedStatus, gap: timedelta | None, now: datetime, settings: HealthSettings
) -> tuple[Health, str]:
    """The feed's health and a one-line reason a person can act on."""
    if feed.disabled:
        return "disabled", feed.disabled
    if feed.error_count:
        since = feed.last_success_at or feed.created_at
        if since is not None and now - since >= settings.failing_after:
            return "failing", f"failing for {_ago(now - since)}: {feed.last_error}"
    quiet_since = feed.last_new_at or feed.last_success_at
    if quiet_since is not None and feed.last_success_at is not None:
        threshold = silent_threshold(gap, settings)
        if now - quiet_since >= threshold:
            return (
                "silent",
                f"no new article for {_ago(now - quiet_since)} (usually within {_ago(threshold)})",
            )
    return "ok", "ok"


def assess_lazily(
    feed: FeedStatus, gap_of: Callable[[], timedelta | None], now: datetime, settings: HealthSettings
) -> tuple[Health, str]:
    """``assess``, asking ``gap_of`` (a read of the feed's recent articles) only when the
    gap can change the answer: it only ever raises the silence threshold above
    ``silent_after``, so a feed that is not silent without it is not silent with it.
    Polls call this after every poll; most never need the read."""
    health, reason = assess(feed, None, now, settings)
    if health != "silent":
        return health, reason
    return assess(feed, gap_of(), now, settings)


def after_success(feed: FeedState, now: datetime, *, new: bool) -> FeedStatus:
    """What the store holds for ``feed`` once a successful poll at ``now`` is recorded
    (no error, a success now, a new article now if ``new``), from what the poll's claim
    read: the health check after a success needs no read of its own."""
    return FeedStatus(
        name=feed.name,
        url=feed.url,
        active=True,
        last_poll_at=now,
        last_success_at=now,
        last_error=None,
        error_count=0,
        next_poll_at=None,
        articles=0,
        alerts=0,
        last_new_at=now if new else feed.last_new_at,
        health=feed.health,
    )


def _ago(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{max(1, round(hours * 60))}m"
    if hours < 48:
        return f"{round(hours)}h"
    return f"{round(hours / 24)}d"
