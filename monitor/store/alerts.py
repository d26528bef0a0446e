"""Which rows a poll's matches become: match records, alert deliveries, story updates.

Every match is recorded (``matches``). A match alerts, one outbox row per (article,
channel) listing the rules that notify that channel, when its rule alerts per article
(``stories: each``) or when it is the first report of its story that the rule matched
(the pair (story, rule) is new). A later report of an alerted story sends no alert;
a channel with ``story_updates: digest`` gets an "also reported by" line in its
next digest, one with ``story_updates: thread`` at most one update per story an hour
(the ``update_slot`` is unique per channel). Pure: the caller says which pairs are new.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.identity import digest
from monitor.models import Match


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a match goes: rule -> channels, digest holds, channels' story update modes."""

    routes: Mapping[str, Sequence[str]]
    hold: Mapping[str, datetime]
    updates: Mapping[str, str]  # channel -> none | digest | thread


def match_row(article_id: int, match: Match, now: datetime) -> dict[str, Any]:
    """The record of one match (an alert or not)."""
    return {
        "article_id": article_id,
        "rule": match.rule,
        "field": match.field,
        "terms": json.dumps(list(match.terms)),
        "snippet": match.snippet.text,
        "highlights": json.dumps([list(h) for h in match.snippet.highlights]),
        "created_at": now,
    }


def alert_rows(
    feed_id: int,
    key: str,
    article_id: int,
    rules: Sequence[str],
    routing: Routing,
    now: datetime,
    story_id: int | None = None,
) -> list[dict[str, Any]]:
    """One outbox row per channel, listing the alerting rules that notify it."""
    by_channel: dict[str, list[str]] = {}
    for rule in rules:
        for channel in routing.routes.get(rule, ()):
            by_channel.setdefault(channel, []).append(rule)
    return [
        _row(article_id, channel, digest(str(feed_id), key, channel), names, routing, now, story_id)
        for channel, names in by_channel.items()
    ]


def update_rows(
    feed_id: int,
    key: str,
    article_id: int,
    rules: Sequence[str],
    routing: Routing,
    now: datetime,
    story_id: int,
    alerted: Collection[str],
) -> list[dict[str, Any]]:
    """Updates for a later report of an alerted story: channels that asked for them
    (``story_updates``), and that this article does not alert anyway (``alerted``)."""
    by_channel: dict[str, list[str]] = {}
    for rule in rules:
        for channel in routing.routes.get(rule, ()):
            if routing.updates.get(channel, "none") != "none" and channel not in alerted:
                by_channel.setdefault(channel, []).append(rule)
    rows = []
    for channel, names in by_channel.items():
        row = _row(
            article_id, channel, digest(str(feed_id), key, channel, "update"), names, routing, now, story_id
        )
        row["kind"] = "update"
        if routing.updates[channel] == "thread":
            row["update_slot"] = f"{story_id}@{now.strftime('%Y-%m-%dT%H')}"
            row["batched"], row["next_attempt_at"] = False, now
        rows.append(row)
    return rows


def _row(
    article_id: int,
    channel: str,
    message_key: str,
    rules: list[str],
    routing: Routing,
    now: datetime,
    story_id: int | None,
) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "channel": channel,
        "message_key": message_key,
        "rules": json.dumps(rules),
        "batched": channel in routing.hold,
        "done_targets": "[]",
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": routing.hold.get(channel, now),
        "created_at": now,
        "story_id": story_id,
        "kind": "alert",
        "update_slot": None,
    }
