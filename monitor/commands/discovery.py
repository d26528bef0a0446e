"""``feeds add``'s search: from an address to one feed, asking when a page offers several.

The address is fetched with the same Fetcher (limits, user agent) the daemon uses. A
body that is a feed is taken as it is. An HTML page is searched for the feeds its
``<head>`` advertises: one is taken, several are listed and the user picks one (or
``--pick N`` does; without a terminal to ask on, the command stops and lists them).
The chosen feed is fetched too, so nothing is added that the daemon could not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from monitor.commands._common import EXIT_CONFIG, EXIT_FAILURE, CommandExit
from monitor.config import FetchSettings
from monitor.discover import Alternate, alternates, feed_kind, json_feed_title
from monitor.errors import FeedError
from monitor.fetch import Fetcher
from monitor.models import Fetched
from monitor.parse import parse

_KINDS = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON",
}


@dataclass(frozen=True, slots=True)
class Found:
    """The feed to add: its address and its own title (None when it has none)."""

    url: str
    title: str | None


def find_feed(url: str, settings: FetchSettings, *, pick: int | None, stdin: TextIO, out: TextIO) -> Found:
    """The feed at ``url``, or the one its page links to; CommandExit when there is none."""
    with Fetcher(settings) as fetcher:
        page = _get(fetcher, url)
        if feed_kind(page.body, page.content_type):
            return Found(page.moved_to or url, _title(page))
        choices = alternates(page.body, page.final_url, page.content_type)
        if not choices:
            raise CommandExit(EXIT_FAILURE, f"no feed found at {url}")
        if len(choices) == 1 and pick in (None, 1):
            chosen = choices[0]
        else:
            chosen = _choose(url, choices, pick, stdin, out)
        feed = _get(fetcher, chosen.url)
        if not feed_kind(feed.body, feed.content_type):
            raise CommandExit(EXIT_FAILURE, f"{chosen.url} (linked from {url}) is not a feed")
        return Found(feed.moved_to or chosen.url, _title(feed) or chosen.title)


def _get(fetcher: Fetcher, url: str) -> Fetched:
    try:
        result = fetcher.fetch(url)
    except FeedError as e:
        raise CommandExit(EXIT_FAILURE, f"{url}: {e}") from e
    if not isinstance(result, Fetched):  # NotModified: we sent no validators
        raise CommandExit(EXIT_FAILURE, f"{url}: fetch: unexpected 304 Not Modified")
    return result


def _title(feed: Fetched) -> str | None:
    """The feed's own title; CommandExit when the daemon could not read the feed."""
    if feed_kind(feed.body, feed.content_type) == "json":
        return json_feed_title(feed.body, feed.content_type)
    try:
        return parse(feed).title
    except FeedError as e:
        raise CommandExit(EXIT_FAILURE, f"{feed.url}: {e}") from e


def _choose(
    url: str, choices: Sequence[Alternate], pick: int | None, stdin: TextIO, out: TextIO
) -> Alternate:
    """The feed ``--pick`` names, else the one the user types; CommandExit when neither."""
    count = len(choices)
    listing = "\n".join(
        f"  {i}. {c.title or '(untitled)'}  {c.url}  ({_KINDS.get(c.type, c.type)})"
        for i, c in enumerate(choices, 1)
    )
    if pick is not None:
        if 1 <= pick <= count:
            return choices[pick - 1]
        raise CommandExit(EXIT_CONFIG, f"--pick {pick}: {url} links to {count} feeds:\n{listing}")
    if not stdin.isatty():
        raise CommandExit(EXIT_CONFIG, f"{url} links to {count} feeds; choose one with --pick N:\n{listing}")
    print(f"{url} links to {count} feeds:\n{listing}", file=out)
    while True:
        out.write(f"Add which one? [1-{count}] ")
        out.flush()
        answer = stdin.readline()
        if not answer:
            raise CommandExit(EXIT_CONFIG, "no feed chosen; nothing was added")
        text = answer.strip()
        if text.isdigit() and 1 <= int(text) <= count:
            return choices[int(text) - 1]
        print(f"Please answer with a number from 1 to {count}.", file=out)
