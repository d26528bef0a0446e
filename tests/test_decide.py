"""The poll's pure decisions: waits clamped whatever a publisher says, first-poll and
retention filters that survive any date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import PollSettings, Settings
from monitor.decide import alertable, before, error_backoff, longest_wait, polite_interval, within_retention
from monitor.models import Entry

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)
CAP = timedelta(hours=6)
POLL = PollSettings(interval=TEN, max_backoff=CAP)


def _entry(key: str, published: datetime, *, dated: bool = True) -> Entry:
    return Entry(key, key, None, None, published, "", "", "", "", dated=dated)


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (None, TEN),
        (60.0, TEN),
        (3600.0, timedelta(hours=1)),
        (99999999999999.0, CAP),
        (float("inf"), TEN),
        (float("nan"), TEN),
        (-5.0, TEN),
        (1e308, CAP),
    ],
    ids=["none", "shorter", "longer", "huge-max-age", "inf", "nan", "negative", "float-max"],
)
def test_cache_hints_are_clamped(hint: float | None, expected: timedelta) -> None:
    assert polite_interval(TEN, hint, POLL) == expected


@pytest.mark.parametrize(
    ("failures", "retry_after", "expected"),
    [
        (1, None, TEN),
        (3, None, 4 * TEN),
        (10_000, None, CAP),
        (0, None, TEN),
        (1, 999999999999.0, CAP),
        (1, 1800.0, timedelta(minutes=30)),
        (1, float("nan"), TEN),
    ],
    ids=["first", "third", "many", "zero", "huge-retry-after", "retry-after", "nan-retry-after"],
)
def test_error_backoff_is_clamped(failures: int, retry_after: float | None, expected: timedelta) -> None:
    assert error_backoff(TEN, failures, CAP, retry_after) == expected


@given(
    interval=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=30)),
    hint=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    failures=st.integers(min_value=-5, max_value=10**9),
)
def test_any_publisher_wait_stays_between_the_interval_and_the_cap(
    interval: timedelta, hint: float | None, failures: int
) -> None:
    poll = PollSettings(interval=interval, max_backoff=CAP)
    limit = max(CAP, interval)
    assert interval <= polite_interval(interval, hint, poll) <= limit
    assert interval <= error_backoff(interval, failures, CAP, hint) <= limit


def test_longest_wait_covers_every_feed_interval() -> None:
    settings = Settings.model_validate(
        {
            "poll": {"interval": "10m", "max_backoff": "6h"},
            "feeds": [{"name": "weekly", "url": "https://x.example/f", "interval": "7d"}],
        }
    )
    assert longest_wait(settings) == timedelta(days=7)
    assert longest_wait(Settings()) == CAP


def test_first_poll_alerts_only_recent_dated_entries() -> None:
    entries = [
        _entry("new", NOW - timedelta(hours=1)),
        _entry("old", NOW - timedelta(days=3)),
        _entry("undated", NOW, dated=False),
    ]
    assert [e.key for e in alertable(entries, True, POLL, NOW)] == ["new"]
    assert [e.key for e in alertable(entries, False, POLL, NOW)] == ["new", "old", "undated"]
    huge = PollSettings(recent_window=timedelta(days=999_999_999))
    assert [e.key for e in alertable(entries, True, huge, NOW)] == ["new", "old"]


def test_retention_drops_dated_entries_older_than_the_alert_horizon_whatever_the_horizon() -> None:
    entries = [_entry("year-one", datetime(1, 1, 1, tzinfo=UTC)), _entry("today", NOW)]
    assert [e.key for e in within_retention(entries, timedelta(days=30), NOW)] == ["today"]
    assert [e.key for e in within_retention(entries, timedelta(days=999_999_999), NOW)] == [
        "year-one",
        "today",
    ]
    assert [e.key for e in within_retention(entries, None, NOW)] == ["year-one", "today"]
    assert before(NOW, timedelta(days=999_999_999)) == datetime.min.replace(tzinfo=UTC)
