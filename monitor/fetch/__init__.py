"""HTTP for feeds and article pages: one shared httpx.Client, conditional GET, hard limits
on size and time, and the address policy at connect time.

httpx gives us connect/read timeouts but no total deadline and no cap on the
decompressed size, so the body is read with ``iter_raw()`` through our own
decompressor, counting bytes and checking a monotonic deadline on every chunk
(``_body``). The deadline also bounds what happens before the body: every socket
connect, read and write of a fetch gets at most the time left (``_network``), so a
server that drips its headers a byte at a time is cut off too.

Addresses (``_addresses``, ``_network``): a fetch whose origin (the configured feed
address, or the feed an article link came from) has a public address may connect only
to public addresses, on every hop; the check is made on the address the socket
connects to, so DNS rebinding cannot slip in between. An origin whose addresses are
all non-public (an intranet feed) is trusted to go where it likes.

Numbers in headers (``Retry-After``, ``max-age``, ``Content-Length``) are clamped
(``_headers``). A URL that is not a valid http(s) URL is a FetchError before anything
is sent.
"""

from monitor.fetch._addresses import AddressPolicy, IPAddress, Resolver, is_public, system_resolver
from monitor.fetch._body import read_body
from monitor.fetch._client import ACCEPT, MAX_REDIRECTS, PROJECT_URL, USER_AGENT, Fetcher, request_url
from monitor.fetch._headers import MAX_VALIDATOR, MAX_WAIT, parse_retry_after, validator

__all__ = [
    "ACCEPT",
    "MAX_REDIRECTS",
    "MAX_VALIDATOR",
    "MAX_WAIT",
    "PROJECT_URL",
    "USER_AGENT",
    "AddressPolicy",
    "Fetcher",
    "IPAddress",
    "Resolver",
    "is_public",
    "parse_retry_after",
    "read_body",
    "request_url",
    "system_resolver",
    "validator",
]
