"""HTTP for feeds: one shared httpx.Client, conditional GET, hard limits on size and time.

httpx gives us connect/read timeouts but no total deadline and no cap on the
decompressed size, so the body is read with ``iter_raw()`` through our own
decompressor, counting bytes and checking a monotonic deadline on every chunk.
The deadline also bounds what happens before the body: every socket connect, read
and write of a fetch gets at most the time left (``_DeadlineBackend``), so a server
that drips its headers a byte at a time is cut off too, not only one that drips
its body.

Redirects: a feed whose configured address is public may not be redirected to a
loopback, private, link-local or otherwise non-public address (each hop's host is
resolved and checked before it is requested); a feed configured with such an
address is trusted to go where it likes.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpcore
import httpx

from monitor import __version__
from monitor.config import FetchSettings
from monitor.errors import FetchError, GoneError
from monitor.models import Fetched, NotModified

PROJECT_URL = "https://github.com/monitor-news/monitor"
USER_AGENT = f"monitor/{__version__} (+{PROJECT_URL})"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/feed+json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
MAX_REDIRECTS = 10
_GUARD = "monitor.redirect_guard"  # request extension carrying the _RedirectGuard


class Fetcher:
    """Owns the httpx.Client every feed request goes through."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._monotonic = monotonic
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()
        self._deadlines = threading.local()  # this thread's fetch deadline (monotonic)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        self._client = httpx.Client(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout.total_seconds(),
                read=settings.read_timeout.total_seconds(),
                write=settings.read_timeout.total_seconds(),
                pool=settings.deadline.total_seconds(),
            ),
            headers={
                "User-Agent": settings.user_agent or USER_AGENT,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
            limits=limits,
            transport=transport or _DeadlineTransport(limits, _DeadlineBackend(self._time_left)),
            trust_env=False,
            event_hooks={"request": [_check_hop]},
        )

    def close(self) -> None:
        """Release pooled connections."""
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        now: datetime | None = None,
        origin: str | None = None,
    ) -> Fetched | NotModified:
        """GET ``url``; 304 -> NotModified; anything unusable raises FetchError.

        ``origin`` is where ``url`` came from when it is not a configured address (an
        article link found in a feed): the redirect guard then treats ``url`` itself
        as a hop from ``origin``, so a public feed cannot send us to a private address.
        """
        fetched_at = now or datetime.now(UTC)
        deadline = self._monotonic() + self._settings.deadline.total_seconds()
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        guard = {_GUARD: _RedirectGuard(url, origin or url)}
        self._deadlines.value = deadline
        try:
            with (
                self._host_slot(url),
                self._client.stream("GET", url, headers=headers, extensions=guard) as response,
            ):
                if response.status_code == 304:
                    return NotModified(url=url, fetched_at=fetched_at, max_age=_max_age(response))
                _raise_for_status(url, response, fetched_at)
                body = self._read_body(url, response, deadline)
                return Fetched(
                    url=url,
                    final_url=str(response.url),
                    status=response.status_code,
                    body=body,
                    content_type=response.headers.get("Content-Type"),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    fetched_at=fetched_at,
                    moved_to=_permanent_target(response),
                    max_age=_max_age(response),
                )
        except httpx.TimeoutException as e:
            if self._time_left() == 0:
                raise FetchError(url, self._too_long()) from e
            raise FetchError(url, f"fetch: timed out ({_timeout_kind(e)})") from e
        except httpx.TooManyRedirects as e:
            raise FetchError(url, f"fetch: more than {MAX_REDIRECTS} redirects") from e
        except httpx.HTTPError as e:
            raise FetchError(url, f"fetch: {_describe(e)}") from e
        finally:
            self._deadlines.value = None

    def _time_left(self) -> float | None:
        """Seconds left before this thread's fetch deadline (0 once past it); None outside a fetch."""
        deadline: float | None = getattr(self._deadlines, "value", None)
        if deadline is None:
            return None
        return max(0.0, deadline - self._monotonic())

    def _too_long(self) -> str:
        return f"fetch: took longer than {self._settings.deadline.total_seconds():g}s"

    @contextmanager
    def _host_slot(self, url: str) -> Iterator[None]:
        """At most ``fetch.per_host`` requests to one host at a time (politeness)."""
        host = httpx.URL(url).host.lower()
        with self._slots_lock:
            slot = self._slots.setdefault(host, threading.BoundedSemaphore(self._settings.per_host))
        with slot:
            yield

    def _read_body(self, url: str, response: httpx.Response, deadline: float) -> bytes:
        """Read, decompress and cap the body; enforce the total deadline."""
        limit = int(self._settings.max_bytes)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(url, f"fetch: body of {declared} bytes is over the {limit}-byte cap")
        decoder = _decoder(response.headers.get("Content-Encoding", ""))
        parts: list[bytes] = []
        size = 0
        # iter_raw() without a chunk size yields what each socket read returns; with
        # one, httpx would buffer until that many bytes came, and a server dripping a
        # byte at a time would never reach the deadline check below.
        for chunk in _decoded(response.iter_raw(), decoder, limit + 1):
            size += len(chunk)
            if size > limit:
                raise FetchError(url, f"fetch: body is over the {limit}-byte cap")
            if self._monotonic() > deadline:
                raise FetchError(url, self._too_long())
            parts.append(chunk)
        return b"".join(parts)


def _bounded(timeout: float | None, left: float | None, error: type[Exception]) -> float | None:
    """A socket timeout cut to the time left before the deadline (None: no fetch deadline)."""
    if left is None:
        return timeout
    if left <= 0:
        raise error("the fetch's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every operation waits at most until the fetch's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, time_left: Callable[[], float | None]) -> None:
        self._stream = stream
        self._time_left = time_left

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, self._time_left(), httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, self._time_left(), httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, self._time_left(), httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded), self._time_left)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, wrapped so no connect, read or write outlives the deadline."""

    def __init__(self, time_left: Callable[[], float | None]) -> None:
        self._inner = httpcore.SyncBackend()
        self._time_left = time_left

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, self._time_left(), httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream, self._time_left)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's HTTP transport on the deadline-enforcing network backend.

    httpx offers no way to choose httpcore's network backend, so the connection pool
    that ``HTTPTransport.__init__`` builds is replaced by an equivalent one that uses it.
    """

    def __init__(self, limits: httpx.Limits, backend: httpcore.NetworkBackend) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class _RedirectGuard:
    """Refuses hops from a public origin to a non-public address (see the module docstring)."""

    def __init__(self, url: str, origin: str) -> None:
        self.url = url
        self.origin = httpx.URL(origin)
        self._origin_public: bool | None = None

    def check(self, hop: httpx.URL) -> None:
        if hop.host == self.origin.host:
            return
        if self._origin_public is None:
            self._origin_public = all(_public(ip) for ip in _resolve(self.origin.host))
        if not self._origin_public:
            return
        for ip in _resolve(hop.host):
            if not _public(ip):
                raise FetchError(self.url, f"fetch: redirect to a private address refused: {hop} ({ip})")


def _check_hop(request: httpx.Request) -> None:
    """httpx request hook: runs before the first request and before every redirect."""
    guard = request.extensions.get(_GUARD)
    if isinstance(guard, _RedirectGuard):
        guard.check(request.url)


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses a host name (or literal) stands for; empty when it does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable: not loopback, private (RFC 1918, fc00::/7), link-local, unspecified,
    shared (100.64/10), documentation, multicast or reserved."""
    return ip.is_global and not ip.is_multicast


def _decoder(encoding: str) -> zlib._Decompress | None:
    """A zlib decompressor for gzip/deflate, None for identity."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")


def _decoded(raw: Iterator[bytes], decoder: zlib._Decompress | None, cap: int) -> Iterator[bytes]:
    """Decompress lazily, never producing more than ``cap`` bytes per step."""
    if decoder is None:
        yield from raw
        return
    try:
        for chunk in raw:
            data = decoder.decompress(chunk, cap)
            yield data
            while decoder.unconsumed_tail:
                yield decoder.decompress(decoder.unconsumed_tail, cap)
        yield decoder.flush()
    except zlib.error as e:
        raise httpx.DecodingError(f"corrupt compressed body: {e}") from e


def _permanent_target(response: httpx.Response) -> str | None:
    """The new address when every redirect on the way was permanent (301/308)."""
    if response.history and all(r.status_code in (301, 308) for r in response.history):
        return str(response.url)
    return None


def _max_age(response: httpx.Response) -> float | None:
    """``Cache-Control: max-age`` in seconds, when the server gives one."""
    for directive in response.headers.get("Cache-Control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip().isdigit():
            return float(value.strip())
    return None


def _raise_for_status(url: str, response: httpx.Response, now: datetime) -> None:
    """Non-2xx -> FetchError; 429/503 carry Retry-After in seconds; 410 is GoneError."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 410:
        raise GoneError(url, "fetch: HTTP 410 Gone: the publisher removed this feed")
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
    reason = response.reason_phrase or ""
    raise FetchError(url, f"fetch: HTTP {status} {reason}".rstrip(), retry_after=retry_after)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _timeout_kind(e: httpx.TimeoutException) -> str:
    return {
        httpx.ConnectTimeout: "connect",
        httpx.ReadTimeout: "read",
        httpx.WriteTimeout: "write",
        httpx.PoolTimeout: "pool",
    }.get(type(e), "timeout")


def _describe(e: httpx.HTTPError) -> str:
    """A short reason: 'cannot connect: [Errno 111] Connection refused'."""
    if isinstance(e, httpx.ConnectError):
        return f"cannot connect: {e}" if str(e) else "cannot connect"
    if isinstance(e, httpx.DecodingError):
        return str(e)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
