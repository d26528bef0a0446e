"""Exceptions of monitor; a leaf module.

    MonitorError
    ├── ConfigError          a config file is wrong (carries path:line:col)
    ├── FeedError(url)       one feed could not be read; recorded on the feed row
    │   ├── FetchError       network, HTTP status, size or time limits
    │   │   └── GoneError    HTTP 410: the feed is disabled
    │   └── ParseError       the body is not a feed we can read
    ├── ExtractError         an article page gave no text (recorded as the entry's page_error)
    ├── OpmlError            an OPML file cannot be read (or declares XML entities)
    ├── StorageError         the database refused an operation (locked, gone)
    │   └── LeaseLost        a feed's lease passed to another poller mid-poll
    └── NotifyError          a channel did not accept a message

Only operational failures are wrapped; bugs propagate as themselves.
"""

from __future__ import annotations

from dataclasses import dataclass


class MonitorError(Exception):
    """Base of every error monitor raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One mistake in a config file, located at the offending key."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class ConfigError(MonitorError):
    """The configuration is invalid; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FeedError(MonitorError):
    """A feed could not be fetched or parsed."""

    def __init__(self, url: str, message: str, *, retry_after: float | None = None) -> None:
        self.url = url
        self.retry_after = retry_after
        super().__init__(message)


class FetchError(FeedError):
    """The HTTP exchange failed: connection, status, size or time."""


class GoneError(FetchError):
    """HTTP 410: the publisher says the feed is gone for good."""


class ParseError(FeedError):
    """The body could not be read as a feed."""


class ExtractError(MonitorError):
    """An article page could not be turned into text: the extractor failed, was too
    slow or too big, or its worker died. The entry keeps its feed text."""


class OpmlError(MonitorError):
    """An OPML subscription list could not be read."""


class StorageError(MonitorError):
    """The database failed for an operational reason."""


class LeaseLost(StorageError):
    """The feed's lease is no longer ours (it expired and another poller took it):
    this poll's results are dropped, the other poller's stand."""


class NotifyError(MonitorError):
    """A notification channel did not accept the message.

    ``delivered`` lists the channel's targets (URL indexes) that did accept it, so a
    retry goes only to the others.
    """

    def __init__(self, message: str, delivered: frozenset[int] = frozenset()) -> None:
        self.delivered = delivered
        super().__init__(message)
