"""Sockets for the fetcher: the total deadline on every operation, and the address policy
applied where each connection is opened.

``PinnedBackend.connect_tcp`` resolves the host once per fetch (through the resolver
seam), keeps only the addresses the fetch's trust class allows, and connects to one of
those very addresses; httpcore then runs TLS over that socket with the host *name*
(SNI and certificate checks are unchanged). Nothing resolves the name again between
the check and the connection.

Keep-alive connections cannot carry a request past the policy: ``PinnedTransport``
keeps one connection pool per trust class, so a public origin's request only ever
reuses a connection that was itself opened to a checked public address.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpcore
import httpx

from monitor.fetch._addresses import Address, AddressPolicy, RefusedAddress, Resolver, Trust, resolve

TRUST = "monitor.trust"  # request extension: the fetch's trust class (set by Fetcher.fetch)


@dataclass
class FetchContext:
    """What the sockets of one fetch need to know; one per thread, during a fetch."""

    deadline: float
    answers: dict[str, list[Address]] = field(default_factory=dict)  # host -> addresses, this fetch


def bounded(timeout: float | None, left: float | None, error: type[Exception]) -> float | None:
    """A socket timeout cut to the time left before the deadline (None: no fetch deadline)."""
    if left is None:
        return timeout
    if left <= 0:
        raise error("the fetch's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A socket whose every operation waits at most until the fetch's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, time_left: Callable[[], float | None]) -> None:
        self._stream = stream
        self._time_left = time_left

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, bounded(timeout, self._time_left(), httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, bounded(timeout, self._time_left(), httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        limit = bounded(timeout, self._time_left(), httpcore.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, limit), self._time_left)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, opened only to addresses the policy allows (``restrict``),
    and wrapped so no connect, read or write outlives the fetch's deadline."""

    def __init__(
        self,
        resolver: Resolver,
        policy: AddressPolicy,
        context: Callable[[], FetchContext | None],
        time_left: Callable[[], float | None],
        *,
        restrict: bool,
    ) -> None:
        self._inner = httpcore.SyncBackend()
        self._resolver, self._policy, self._restrict = resolver, policy, restrict
        self._context, self._time_left = context, time_left

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._allowed(host, self._addresses(host, port))
        error: httpcore.ConnectError | None = None
        for address in addresses:  # in the resolver's order, as getaddrinfo users do
            limit = bounded(timeout, self._time_left(), httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(address.text, port, limit, local_address, socket_options)
            except httpcore.ConnectError as e:
                error = e
                continue
            return DeadlineStream(stream, self._time_left)
        assert error is not None  # _allowed never returns an empty list
        raise error

    def _addresses(self, host: str, port: int) -> list[Address]:
        """The host's addresses, looked up once per fetch (the fetch's own answer if it has one)."""
        context = self._context()
        if context is not None and host in context.answers:
            return context.answers[host]
        try:
            found = resolve(self._resolver, host, port)
        except (OSError, UnicodeError) as e:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {e}") from e
        if not found:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: no addresses")
        if context is not None:
            context.answers[host] = found
        return found

    def _allowed(self, host: str, addresses: list[Address]) -> list[Address]:
        if not self._restrict:
            return addresses
        allowed = [a for a in addresses if self._policy(a.ip)]
        if not allowed:
            raise RefusedAddress(host, addresses[0])
        return allowed

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def closed_unanswered(request: httpx.Request, error: httpx.TransportError) -> bool:
    """Whether a request met a connection the server closed before answering, which
    HTTP/1.1 allows at any time (RFC 9112 9.6): a kept-alive connection whose idle
    timeout ran out as we reused it. Browsers send an idempotent request again on a new
    connection; so do we, once. Nothing of a response had come: the error was raised
    before ``handle_request`` returned, and a reset or short read of the headers is
    the same case as a clean close."""
    if request.method not in ("GET", "HEAD"):
        return False
    return not isinstance(error, httpx.RemoteProtocolError) or "without sending a response" in str(error)


class PinnedTransport(httpx.BaseTransport):
    """httpx's HTTP transport, one connection pool per trust class, each on its own backend.

    httpx offers no way to choose httpcore's network backend, so the pool that
    ``HTTPTransport.__init__`` builds is replaced by an equivalent one that uses ours.
    """

    def __init__(self, limits: httpx.Limits, backends: dict[Trust, httpcore.NetworkBackend]) -> None:
        self._transports: dict[Trust, httpx.HTTPTransport] = {}
        tls = httpx.create_ssl_context(trust_env=False)  # one for all pools: loading CAs takes 0.1 s
        for trust, backend in backends.items():
            transport = httpx.HTTPTransport(verify=tls, limits=limits, trust_env=False)
            transport._pool = httpcore.ConnectionPool(
                ssl_context=tls,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=backend,
            )
            self._transports[trust] = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        trust: Trust = "private" if request.extensions.get(TRUST) == "private" else "public"
        transport = self._transports[trust]
        try:
            try:
                return transport.handle_request(request)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
                if not closed_unanswered(request, e):
                    raise
                return transport.handle_request(request)  # once more; the closed one is gone
        except RefusedAddress as e:
            raise RefusedAddress(e.host, e.address, str(request.url)) from None

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
