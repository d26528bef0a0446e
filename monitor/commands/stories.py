"""``monitor stories [--since 2d] [--rule NAME] [--json]`` and ``monitor stories show ID``.

A story is the reports of one event from any feed, folded together: its first report,
when it was first and last reported, how many articles and outlets, and the rules that
alerted for it. ``show`` lists its reports with their feeds, and how sure each
assignment was. Read-only: never waits for a running daemon.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.commands._common import EXIT_FAILURE, EXIT_OK, add_config_option, table, when
from monitor.config import load_settings, parse_duration
from monitor.decide import before
from monitor.log import install_redactor
from monitor.models import StoryDetail, StorySummary
from monitor.store import Store


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stories`` (and ``stories show ID``) to the top-level sub-commands."""
    text = "stories: the reports of one event from many outlets, and the rules that alerted"
    stories = commands.add_parser("stories", help=text, description=__doc__)
    stories.set_defaults(handler=_list)
    add_config_option(stories)
    stories.add_argument("--since", type=_age, metavar="AGE", help="stories reported in this span, e.g. 2d")
    stories.add_argument("--rule", metavar="NAME", help="only stories this rule alerted for")
    stories.add_argument("--json", action="store_true", help="machine-readable output")
    actions = stories.add_subparsers(dest="stories_action", metavar="ACTION")
    show = actions.add_parser("show", help="one story's reports, with their feeds")
    show.set_defaults(handler=_show)
    add_config_option(show)
    show.add_argument(
        "id", type=_story_number, metavar="ID", help="the story's number, as `monitor stories` lists it"
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")


MAX_ID = 2**63 - 1  # the largest row id either database stores


def _story_number(text: str) -> int:
    """A story's number: a whole number a database row id can be (a longer one raised
    OverflowError in the SQLite driver)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a story number: {text[:40]!r}") from None
    if not 1 <= number <= MAX_ID:
        raise argparse.ArgumentTypeError(f"not a story number: {text[:40]!r} (from 1 to {MAX_ID})")
    return number


def _age(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _open(args: argparse.Namespace) -> tuple[Store, str]:
    settings = load_settings(args.config, require_env=False)
    install_redactor(settings.redactor())
    return Store.open(settings.database, upgrade=False), settings.timezone


def _list(args: argparse.Namespace) -> int:
    store, zone = _open(args)
    try:
        since = before(datetime.now(UTC), args.since) if args.since else None
        found = store.stories(since=since, rule=args.rule)
    finally:
        store.close()
    if args.json:
        print(json.dumps([asdict(s) for s in found], default=_iso, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not found:
        print("No stories yet: a story starts when a rule matches an article.")
        return EXIT_OK
    print(_table(found, zone))
    return EXIT_OK


def _table(found: list[StorySummary], zone: str) -> str:
    tz = ZoneInfo(zone)
    rows = [("ID", "FIRST SEEN", "LAST SEEN", "OUTLETS", "ARTICLES", "RULES ALERTED", "FIRST REPORT")]
    rows += [
        (
            str(s.id),
            when(s.first_seen, tz),
            when(s.last_seen, tz),
            str(s.outlets),
            str(s.articles),
            ", ".join(s.rules)[:40] or "-",
            s.title[:70],
        )
        for s in found
    ]
    return table(rows)


def _show(args: argparse.Namespace) -> int:
    store, zone = _open(args)
    try:
        detail = store.story(args.id)
    finally:
        store.close()
    if detail is None:
        print(f"monitor: no story {args.id} (see `monitor stories`)", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(asdict(detail), default=_iso, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(_detail(detail, zone))
    return EXIT_OK


def _detail(detail: StoryDetail, zone: str) -> str:
    tz = ZoneInfo(zone)
    s = detail.summary
    head = [
        f"Story {s.id}: {s.title}",
        f"{s.articles} article(s) from {s.outlets} outlet(s), "
        f"{when(s.first_seen, tz)} to {when(s.last_seen, tz)}",
        "Alerted: " + (", ".join(f"{rule} ({when(at, tz)})" for rule, at in detail.alerts) or "no rule yet"),
        "",
    ]
    rows = [("PUBLISHED", "FEED", "SCORE", "TITLE")]
    rows += [
        (when(r.published, tz), r.feed, "first" if r.started else f"{r.score:.2f}", r.title[:80])
        for r in detail.reports
    ]
    return "\n".join(head) + table(rows)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
