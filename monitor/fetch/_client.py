"""The Fetcher: one shared httpx.Client, conditional GET, hard limits on size and time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from monitor import __version__
from monitor.config import FetchSettings
from monitor.errors import FetchError
from monitor.fetch._addresses import (
    Address,
    AddressPolicy,
    Origins,
    RefusedAddress,
    Resolver,
    Trust,
    is_public,
    literal,
    system_resolver,
)
from monitor.fetch._body import read_body
from monitor.fetch._headers import max_age, permanent_target, raise_for_status, validator
from monitor.fetch._network import TRUST, FetchContext, PinnedBackend, PinnedTransport
from monitor.models import Fetched, NotModified

PROJECT_URL = "https://github.com/monitor-news/monitor"
USER_AGENT = f"monitor/{__version__} (+{PROJECT_URL})"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/feed+json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
MAX_REDIRECTS = 10
_WEB_SCHEMES = ("http", "https")


class HostSlots:
    """At most ``per_host`` requests to one host at a time (politeness).

    A host's semaphore lives only while requests to it are in flight or waiting, so the
    table holds no more hosts than there are fetches at once, however many hosts the
    article links of months name (it kept every host ever fetched)."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, tuple[threading.BoundedSemaphore, list[int]]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        key = host.lower()
        with self._lock:
            semaphore, users = self._slots.setdefault(key, (threading.BoundedSemaphore(self._per_host), [0]))
            users[0] += 1
        try:
            with semaphore:
                yield
        finally:
            with self._lock:
                users[0] -= 1
                if not users[0]:
                    del self._slots[key]


class Fetcher:
    """Owns the httpx.Client every feed and page request goes through.

    ``resolver`` and ``policy`` are the DNS and "is this address public?" seams (tests
    fake them). ``transport`` replaces the network altogether (tests only): nothing then
    connects, so no address policy applies.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        resolver: Resolver = system_resolver,
        policy: AddressPolicy = is_public,
    ) -> None:
        self._settings = settings
        self._monotonic = monotonic
        self._origins = Origins(resolver, policy)
        self._hosts = HostSlots(settings.per_host)
        self._local = threading.local()  # this thread's FetchContext, during a fetch
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
            transport=transport or self._pinned(limits, resolver, policy),
            trust_env=False,
            # No cookies: a feed needs none, and a jar shared by every fetch would let one
            # server's Set-Cookie (with bytes no Cookie header can carry) break our requests.
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
        )

    def _pinned(self, limits: httpx.Limits, resolver: Resolver, policy: AddressPolicy) -> PinnedTransport:
        def backend(restrict: bool) -> PinnedBackend:
            return PinnedBackend(resolver, policy, self._context, self._time_left, restrict=restrict)

        return PinnedTransport(limits, {"public": backend(True), "private": backend(False)})

    def close(self) -> None:
        """Release pooled connections."""
        self._client.close()

    @property
    def busy_hosts(self) -> int:
        """Hosts with a request in flight or waiting for its turn."""
        return len(self._hosts)

    @property
    def closed(self) -> bool:
        """Whether ``close`` ran (a reload's old client is closed once unused)."""
        return self._client.is_closed

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
        public: bool = False,
    ) -> Fetched | NotModified:
        """GET ``url``; 304 -> NotModified; anything unusable (a URL that is not http(s)
        included) raises FetchError.

        ``origin`` is where ``url`` came from when it is not a configured address (an
        article link found in a feed): the fetch then has the origin's trust class, so a
        public feed cannot send us to a private address (see ``_addresses``). ``public``
        says the origin was a public one before (the store remembers, across restarts):
        it stays one, whatever its host resolves to now (ADR 0026). The result's
        ``public`` says whether the fetch was made as a public origin.
        """
        fetched_at = now or datetime.now(UTC)
        target = request_url(url)
        trust, answers = self._trust(origin, target, known_public=public)
        headers = {}
        if etag := validator(etag):  # one stored before validators were checked, too
            headers["If-None-Match"] = etag
        if last_modified := validator(last_modified):
            headers["If-Modified-Since"] = last_modified
        deadline = self._monotonic() + self._settings.deadline.total_seconds()
        self._local.context = FetchContext(deadline, answers)
        try:
            return self._get(url, target, headers, fetched_at, trust)
        except httpx.TimeoutException as e:
            if self._time_left() == 0:
                raise FetchError(url, self._too_long()) from e
            raise FetchError(url, f"fetch: timed out ({_timeout_kind(e)})") from e
        except httpx.TooManyRedirects as e:
            raise FetchError(url, f"fetch: more than {MAX_REDIRECTS} redirects") from e
        except httpx.HTTPError as e:
            raise FetchError(url, f"fetch: {_describe(e)}") from e
        except httpx.InvalidURL as e:  # not an HTTPError: httpx raised it following ``Location: mailto:...``
            raise FetchError(url, f"fetch: redirected to an address no client can fetch ({e})") from e
        except RefusedAddress as e:
            message = f"fetch: connection to a non-public address refused: {e.url} ({e.address.ip})"
            raise FetchError(url, message) from e
        finally:
            self._local.context = None

    def _get(
        self, url: str, target: httpx.URL, headers: dict[str, str], fetched_at: datetime, trust: Trust
    ) -> Fetched | NotModified:
        with (
            self._hosts.slot(target.host),
            self._client.stream("GET", target, headers=headers, extensions={TRUST: trust}) as response,
        ):
            if response.status_code == 304:
                return NotModified(
                    url=url, fetched_at=fetched_at, max_age=max_age(response), public=trust == "public"
                )
            raise_for_status(url, response, fetched_at)
            body = read_body(url, response, int(self._settings.max_bytes), self._past_deadline)
            return Fetched(
                url=url,
                final_url=str(response.url),
                status=response.status_code,
                body=body,
                content_type=response.headers.get("Content-Type"),
                etag=validator(response.headers.get("ETag")),
                last_modified=validator(response.headers.get("Last-Modified")),
                fetched_at=fetched_at,
                moved_to=permanent_target(response),
                max_age=max_age(response),
                public=trust == "public",
            )

    def _trust(
        self, origin: str | None, target: httpx.URL, *, known_public: bool = False
    ) -> tuple[Trust, dict[str, list[Address]]]:
        """The fetch's trust class, and the origin's addresses if they were looked up for it."""
        base = target
        if origin is not None:
            try:
                base = httpx.URL(origin)
            except (httpx.InvalidURL, ValueError, TypeError):
                return "public", {}
        host = base.raw_host.decode("ascii", "replace")
        if not host:
            return "public", {}
        if known_public:
            self._origins.remember(host)
        trust, addresses = self._origins.trust(host, base.port or (443 if base.scheme == "https" else 80))
        return trust, ({host: addresses} if addresses else {})

    def _context(self) -> FetchContext | None:
        context: FetchContext | None = getattr(self._local, "context", None)
        return context

    def _time_left(self) -> float | None:
        """Seconds left before this thread's fetch deadline (0 once past it); None outside a fetch."""
        context = self._context()
        if context is None:
            return None
        return max(0.0, context.deadline - self._monotonic())

    def _past_deadline(self) -> str | None:
        return self._too_long() if self._time_left() == 0 else None

    def _too_long(self) -> str:
        return f"fetch: took longer than {self._settings.deadline.total_seconds():g}s"


def request_url(url: str) -> httpx.URL:
    """``url`` as an absolute http(s) URL whose host can be looked up; FetchError saying why not."""
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as e:  # UnicodeError is a ValueError
        raise FetchError(url, f"fetch: not a valid http(s) URL: {_shown(url)} ({e})") from e
    if target.scheme not in _WEB_SCHEMES:
        raise FetchError(url, f"fetch: not an http(s) URL: {_shown(url)}")
    host = target.raw_host.decode("ascii", "replace")
    if not host:
        raise FetchError(url, f"fetch: not a valid http(s) URL: {_shown(url)} (no host)")
    if target.port is not None and not 0 < target.port < 65536:
        raise FetchError(url, f"fetch: not a valid http(s) URL: {_shown(url)} (port {target.port})")
    if literal(host) is None:
        try:
            host.encode("idna")  # what getaddrinfo will do: empty or over-long labels fail
        except UnicodeError as e:
            raise FetchError(url, f"fetch: not a valid http(s) URL: {_shown(url)} (host: {e})") from e
    return target


def _shown(url: str) -> str:
    """The URL for a message: quoted, escaped (controls, surrogates) and at most 200 characters."""
    return repr(url if len(url) <= 200 else url[:199] + "…")


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
