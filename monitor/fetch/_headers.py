"""What the fetcher reads from response headers: status, Retry-After, max-age, Content-Length,
and the validators (ETag, Last-Modified) it sends back.

Every number a server sends is clamped before use. Digits are ASCII only (``"²".isdigit()``
is True, but ``int("²")`` raises), and no wait a server asks for is longer than
``MAX_WAIT`` (a week): ``Retry-After: 999999999999`` or ``max-age=99999999999999``
would otherwise overflow the scheduler's date arithmetic, or silence a feed for
ever. The pipeline caps these hints again at ``poll.max_backoff``. A value that
cannot be read is ignored, never an exception.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from monitor.errors import FetchError, GoneError
from monitor.text import ascii_int, one_line

MAX_WAIT = 7 * 24 * 3600.0  # seconds: the longest wait a server's hint may ask for
MAX_VALIDATOR = 1024  # characters of an ETag or Last-Modified kept; real ones are far shorter


def validator(value: str | None) -> str | None:
    """An ETag or Last-Modified value that can be sent back as it came, else None.

    It is sent in the next request's If-None-Match or If-Modified-Since, and an HTTP
    client encodes header values as ASCII: a server's ``ETag: "café"`` (read as Latin-1)
    made every later request of the feed raise UnicodeEncodeError, so the feed was never
    polled again. Printable ASCII only (spaces inside allowed), at most MAX_VALIDATOR
    characters; anything else means no validator, and the feed is fetched whole (its
    body hash still spares the parse when nothing changed).
    """
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > MAX_VALIDATOR or not (text.isascii() and text.isprintable()):
        return None
    return text


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date, within [0, MAX_WAIT].

    Negative numbers, garbage and dates no calendar has give None.
    """
    if not value:
        return None
    text = value.strip()
    seconds = ascii_int(text)
    if seconds is not None:
        return float(min(seconds, MAX_WAIT))
    if len(text) > 100:
        return None
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delta = (when - now).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(0.0, delta), MAX_WAIT)


def max_age(response: httpx.Response) -> float | None:
    """``Cache-Control: max-age`` in seconds (at most MAX_WAIT), when the server gives one."""
    for directive in response.headers.get("Cache-Control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            seconds = ascii_int(value.strip().strip('"'))
            if seconds is not None:
                return float(min(seconds, MAX_WAIT))
    return None


def declared_length(response: httpx.Response) -> int | None:
    """``Content-Length`` when it is one plain number (anything else: not declared)."""
    return ascii_int(response.headers.get("Content-Length", ""))


def permanent_target(response: httpx.Response) -> str | None:
    """The new address when every redirect on the way was permanent (301/308)."""
    if response.history and all(r.status_code in (301, 308) for r in response.history):
        return str(response.url)
    return None


def raise_for_status(url: str, response: httpx.Response, now: datetime) -> None:
    """Non-2xx -> FetchError; 429/503 carry Retry-After in seconds; 410 is GoneError."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 410:
        raise GoneError(url, "fetch: HTTP 410 Gone: the publisher removed this feed")
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
    reason = one_line(response.reason_phrase or "", 100)
    raise FetchError(url, f"fetch: HTTP {status} {reason}".rstrip(), retry_after=retry_after)
