"""``monitor feeds add|remove|list|import|export``: manage the feeds of config.yaml.

Every change goes through ``monitor.config.editor``: comments and order survive, the
file must validate before and after, and it is replaced atomically. ``add`` takes a
feed's address or a site's home page (see ``monitor.commands.discovery``).
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from monitor.commands._common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    CommandExit,
    add_config_option,
    table,
    when,
)
from monitor.commands.discovery import find_feed
from monitor.config import Settings, format_duration, parse_duration
from monitor.config.editor import NewFeed, add_feeds, current_settings, remove_feed
from monitor.errors import ConfigError
from monitor.files import TooLarge, read_at_most
from monitor.models import FeedStatus
from monitor.notify import check_url
from monitor.opml import OpmlFeed, parse_opml, render_opml
from monitor.store import Store
from monitor.weburl import web_parts

Handler = Callable[[argparse.Namespace], int]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``feeds`` and its actions to the top-level sub-commands."""
    text = "add, remove, list, import or export the feeds of the config file"
    feeds = commands.add_parser("feeds", help=text, description=text)
    actions = feeds.add_subparsers(dest="feeds_action", required=True, metavar="ACTION")

    add = _action(actions, "add", _add, "add a feed, given its address or a site's home page")
    add.add_argument("url", help="a feed's address, or a web page that links to feeds")
    add.add_argument("--name", type=_name, help="the feed's name (default: the feed's own title)")
    add.add_argument("--interval", type=_interval, help="poll interval, e.g. 15m (default: poll.interval)")
    add.add_argument("--pick", type=int, metavar="N", help="take the page's Nth feed without asking")

    remove = _action(actions, "remove", _remove, "remove a feed (by name or URL)")
    remove.add_argument("feed", metavar="NAME|URL")

    listing = _action(actions, "list", _list, "feeds with their URL, interval and health")
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    load = _action(actions, "import", _import, "add every feed of an OPML file not already watched")
    load.add_argument("file", type=Path, metavar="FILE.opml")

    export = _action(actions, "export", _export, "write the feeds as OPML 2.0")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], name: str, handler: Handler, text: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=text, description=text)
    parser.set_defaults(handler=_exits(handler))
    add_config_option(parser)
    return parser


def _exits(handler: Handler) -> Handler:
    """CommandExit -> its message on stderr and its exit code."""

    @wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CommandExit as e:
            print(f"monitor: {e}", file=sys.stderr)
            return e.code

    return run


def _name(text: str) -> str:
    """``--name``: one line of text; a control character was refused only once written,
    at a line of "the edited text" the user never saw."""
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise argparse.ArgumentTypeError("a name holds no control characters; write it on one line")
    return text


def _interval(text: str) -> str:
    """``--interval``: a valid duration, kept as written."""
    try:
        parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text.strip()


def _settings(path: Path, changing: bool) -> Settings:
    """The config as it is; when it does not validate, say that nothing was changed."""
    try:
        return current_settings(path, check_url)
    except ConfigError:
        if changing:
            print(f"monitor: {path} has mistakes; fix them first (feeds were not changed):", file=sys.stderr)
        raise


# -- add / remove ------------------------------------------------------------------


def _add(args: argparse.Namespace) -> int:
    settings = _settings(args.config, changing=True)
    url = _web_address(args.url)
    found = find_feed(url, settings.fetch, pick=args.pick, stdin=sys.stdin, out=sys.stdout)
    explicit = (args.name or "").strip()
    name = explicit or found.title or urlsplit(found.url).hostname or found.url
    by_url = {f.url: f.name for f in settings.feeds}
    if explicit and found.url not in by_url and name in {f.name for f in settings.feeds}:
        taken = f"{args.config} already has a feed named '{name}'; choose another --name"
        raise CommandExit(EXIT_CONFIG, taken)
    result = add_feeds(args.config, [NewFeed(name, found.url, args.interval)], check_url=check_url)
    for feed, existing in result.present:
        print(f"already watched as '{existing}': {feed.url}")
    for feed in result.added:
        every = feed.interval or format_duration(settings.poll.interval) + ", the default"
        print(f"added '{feed.name}': {feed.url} (every {every})")
    return EXIT_OK


def _web_address(text: str) -> str:
    """An http(s) URL; ``example.org`` means ``https://example.org``."""
    url = text.strip()
    if "://" not in url:
        url = "https://" + url
    if web_parts(url) is None:
        raise CommandExit(EXIT_CONFIG, f"not a web address: {text!r} (give an http:// or https:// URL)")
    return url


def _remove(args: argparse.Namespace) -> int:
    settings = _settings(args.config, changing=True)
    removed = remove_feed(args.config, args.feed, check_url=check_url)
    if removed is None:
        known = ", ".join(f"'{f.name}'" for f in settings.feeds) or "none"
        raise CommandExit(EXIT_CONFIG, f"{args.config}: no feed named or at '{args.feed}' (feeds: {known})")
    print(f"removed '{removed.name}': {removed.url}")
    return EXIT_OK


# -- list --------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    settings = _settings(args.config, changing=False)
    health = {s.url: s for s in _statuses(settings)}
    if args.json:
        rows = [_json_row(settings, i, health.get(f.url)) for i, f in enumerate(settings.feeds)]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not settings.feeds:
        print(f"{args.config} has no feeds; add one with `monitor feeds add URL`.")
        return EXIT_OK
    zone = settings.channel_timezone("")
    lines = [("NAME", "URL", "INTERVAL", "LAST SUCCESS", "ERRORS", "LAST ERROR")]
    for feed in settings.feeds:
        status = health.get(feed.url)
        interval = format_duration(settings.feed_interval(feed)) + ("" if feed.interval else "*")
        if status is None or status.last_poll_at is None:
            lines.append((feed.name, feed.url, interval, "not polled yet", "", ""))
            continue
        error = (status.last_error or "")[:80] if status.error_count else ""
        success = when(status.last_success_at, zone)
        lines.append((feed.name, feed.url, interval, success, str(status.error_count), error))
    print(table(lines))
    print("* the default interval (poll.interval)")
    return EXIT_OK


def _statuses(settings: Settings) -> list[FeedStatus]:
    """Health rows from the database; none when a SQLite file does not exist yet."""
    url = make_url(settings.database)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return []
    store = Store.open(settings.database, upgrade=False)
    try:
        return store.feed_statuses()
    finally:
        store.close()


def _json_row(settings: Settings, index: int, status: FeedStatus | None) -> dict[str, object]:
    feed = settings.feeds[index]

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "name": feed.name,
        "url": feed.url,
        "interval": format_duration(settings.feed_interval(feed)),
        "default_interval": feed.interval is None,
        "last_poll_at": iso(status.last_poll_at) if status else None,
        "last_success_at": iso(status.last_success_at) if status else None,
        "error_count": status.error_count if status else 0,
        "last_error": status.last_error if status else None,
        "next_poll_at": iso(status.next_poll_at) if status else None,
        "articles": status.articles if status else 0,
    }


# -- import / export ---------------------------------------------------------------


MAX_OPML_BYTES = 16 * 1024 * 1024  # an export of 50,000 feeds is about 10 MiB


def _import(args: argparse.Namespace) -> int:
    settings = _settings(args.config, changing=True)
    try:
        data = read_at_most(args.file, MAX_OPML_BYTES)
    except TooLarge as e:
        raise CommandExit(EXIT_FAILURE, f"cannot read {args.file}: {e}") from e
    except OSError as e:
        raise CommandExit(EXIT_FAILURE, f"cannot read {args.file}: {e.strerror}") from e
    wanted, skipped = _importable(parse_opml(data, str(args.file)))
    for rejected, reason in skipped:
        print(f"skipped '{rejected.name}': {reason}", file=sys.stderr)
    result = add_feeds(args.config, wanted, check_url=check_url)
    for feed in result.added:
        print(f"added '{feed.name}': {feed.url}")
    print(
        f"{len(result.added)} added, {len(result.present)} already watched, {len(skipped)} skipped "
        f"({len(settings.feeds) + len(result.added)} feeds in {args.config})"
    )
    return EXIT_OK


def _importable(feeds: Sequence[OpmlFeed]) -> tuple[list[NewFeed], list[tuple[OpmlFeed, str]]]:
    """OPML feeds as config entries; those that cannot be one, with the reason."""
    wanted: list[NewFeed] = []
    skipped: list[tuple[OpmlFeed, str]] = []
    for feed in feeds:
        if web_parts(feed.url) is None:
            skipped.append((feed, f"not an http(s) address: {feed.url!r}"))
            continue
        interval = feed.interval
        if interval is not None:
            try:
                parse_duration(interval)
            except ValueError as e:
                print(f"'{feed.name}': ignoring monitor:interval ({e})", file=sys.stderr)
                interval = None
        wanted.append(NewFeed(feed.name, feed.url, interval))
    return wanted, skipped


def _export(args: argparse.Namespace) -> int:
    settings = _settings(args.config, changing=False)
    feeds = [
        OpmlFeed(name=f.name, url=f.url, interval=format_duration(f.interval) if f.interval else None)
        for f in settings.feeds
    ]
    data = render_opml(feeds, created=datetime.now(UTC))
    if args.output is None:
        sys.stdout.write(data.decode("utf-8"))
        return EXIT_OK
    try:
        args.output.write_bytes(data)
    except OSError as e:
        raise CommandExit(EXIT_FAILURE, f"cannot write {args.output}: {e.strerror}") from e
    print(f"wrote {len(feeds)} feeds to {args.output}")
    return EXIT_OK
