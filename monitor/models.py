"""Frozen values that the pipeline stages hand to each other.

fetch -> Fetched | NotModified -> parse -> ParsedFeed(Entry...) -> store/match ->
Match -> store (outbox) -> Alert -> notify.  None of these carry database rows or
sessions; ``store`` converts at its boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Field = Literal["title", "summary", "content", "page"]
MatchField = Literal["title", "summary", "content", "page", "author", "feed", "link"]
"""Where a rule can match: the text fields, plus the author, the feed's name and the link."""
PollStatus = Literal["ok", "not_modified", "error"]
DeliveryState = Literal["pending", "sent", "dead"]


@dataclass(frozen=True, slots=True)
class Fetched:
    """A feed body we downloaded (already decompressed, within the size cap)."""

    url: str
    final_url: str
    status: int
    body: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: datetime
    moved_to: str | None = None
    max_age: float | None = None
    known: str | None = None  # the feed's stored items (``items.Record``): parse only the others
    public: bool = False  # fetched as a public origin (ADR 0026)


@dataclass(frozen=True, slots=True)
class NotModified:
    """The server answered 304: nothing to parse."""

    url: str
    fetched_at: datetime
    max_age: float | None = None
    public: bool = False  # fetched as a public origin (ADR 0026)


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry, normalised: identity, UTC time, HTML and plain text."""

    key: str
    title: str
    link: str | None
    author: str | None
    published: datetime
    summary_html: str
    summary_text: str
    content_html: str
    content_text: str
    dated: bool = True
    page_text: str = ""
    page_error: str | None = None
    # identity.alias_key(link, title), computed where the entry is made (a parse worker,
    # not the poll threads' one interpreter); None: the store computes it.
    alias: str | None = None

    def text(self, name: Field) -> str:
        """The plain text of one field, as rules see it (``page``: the article's web page)."""
        if name == "title":
            return self.title
        if name == "summary":
            return self.summary_text
        if name == "content":
            return self.content_text
        return self.page_text

    def word_count(self) -> int:
        """Words the feed itself carries for this entry (summary and content)."""
        return len(self.summary_text.split()) + len(self.content_text.split())


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What parse makes of a body: feed title and entries, in document order."""

    title: str | None
    link: str | None
    entries: tuple[Entry, ...]
    warning: str | None = None
    ttl: float | None = None  # seconds the publisher asks us to wait (RSS <ttl>)
    dropped: tuple[str, ...] = ()  # why entries could not be read ("entry 3: ..."), at most ~20
    items: str | None = None  # the document's items for next time (``items.Record``); None: none
    skipped: int = 0  # items recognised as stored and not parsed (ADR 0019)


@dataclass(frozen=True, slots=True)
class Snippet:
    """A short excerpt of plain text with the matched spans (start, end) marked."""

    text: str
    highlights: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched an entry, where, and on which words."""

    rule: str
    field: MatchField
    terms: tuple[str, ...]
    snippet: Snippet


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article read back from the store (for ``monitor rules test``)."""

    id: int
    feed: str
    entry: Entry


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed as the poller needs it: config plus the validators we saved."""

    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    first_poll: bool
    error_count: int = 0
    fetch_url: str | None = None
    body_hash: str | None = None
    lease: str | None = None  # the claim's token; every write of the poll's results checks it
    items: str | None = None  # the items of the last document whose entries are stored (ADR 0019)
    last_new_at: datetime | None = None  # for the health check after a successful poll
    health: str = "ok"  # as recorded when the poll claimed the feed
    public_seen: bool = False  # once fetched as a public origin: always one (ADR 0026)

    @property
    def address(self) -> str:
        """Where to fetch: the configured URL, or where it moved permanently."""
        return self.fetch_url or self.url


@dataclass(frozen=True, slots=True)
class StoryRef:
    """The story an alert belongs to, as a message shows it (read when it is sent)."""

    id: int
    first_title: str
    first_link: str | None
    first_feed: str
    outlets: int  # distinct feeds that have reported it so far
    articles: int
    also: tuple[str, ...] = ()  # the feeds of its latest reports, newest first (for updates)


AlertKind = Literal["alert", "update"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to send: an article, the rules it matched, for one channel.

    ``message_key`` is stable for (article, channel) so receivers can drop the rare
    duplicate; ``done_targets`` are the channel's URLs (by index) that already have it;
    ``batched`` alerts go out together as one digest or rate-limit summary. ``story``:
    the story the article reports on; ``kind`` ``update``: a later report of a story
    the channel was already alerted about (``story_updates``).
    """

    delivery_id: int
    channel: str
    feed: str
    title: str
    link: str | None
    published: datetime
    rules: tuple[str, ...]
    snippet: Snippet
    attempts: int = 0
    message_key: str = ""
    done_targets: frozenset[int] = frozenset()
    batched: bool = False
    story: StoryRef | None = None
    kind: AlertKind = "alert"


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """The result of polling one feed, for the log line and for status."""

    feed: str
    status: PollStatus
    new: int = 0
    matched: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    error: str | None = None
    duration_ms: float = 0.0
    rules: tuple[str, ...] = ()
    fetch_ms: float | None = None
    dropped: int = 0  # entries left out, each with a reason (the feed's last warning)
    error_kind: str | None = None  # the failure's type, for metrics: FetchError, ParseError, a bug's type
    skipped: int = 0  # items of a changed body recognised as stored, not parsed (ADR 0019)


@dataclass(frozen=True, slots=True)
class SavedPoll:
    """What one poll added to the database."""

    new: int
    matched: int
    queued: int
    delivery_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """A feed's health, for ``monitor status``."""

    name: str
    url: str
    active: bool
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    error_count: int
    next_poll_at: datetime | None
    articles: int
    alerts: int
    disabled: str | None = None
    fetch_url: str | None = None
    last_new_at: datetime | None = None
    created_at: datetime | None = None
    health: str = "ok"
    last_warning: str | None = None
    last_warning_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """Deliveries of one channel by state, for ``monitor status``."""

    channel: str
    pending: int
    retrying: int
    sent: int
    dead: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class StorySummary:
    """A story for ``monitor stories``: its first report, span, size, and the rules that alerted."""

    id: int
    title: str
    first_seen: datetime | None
    last_seen: datetime | None
    articles: int
    outlets: int
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoryReport:
    """One article of a story (``monitor stories show``), and how sure its assignment was."""

    article_id: int
    feed: str
    title: str
    link: str | None
    published: datetime | None
    score: float
    started: bool  # it started the story


@dataclass(frozen=True, slots=True)
class StoryDetail:
    """A story with its reports, oldest first, and its alerts (rule, when)."""

    summary: StorySummary
    reports: tuple[StoryReport, ...]
    alerts: tuple[tuple[str, datetime | None], ...]
