"""Which addresses a fetch may connect to: the resolver and policy seams, and the trust rule.

A fetch has an *origin*: the configured feed address, or for an article link the feed
it came from. The origin is **private** only if every address its host resolves to is
non-public (an intranet feed, ``localhost``): such a fetch may connect anywhere. Any
other origin is **public** (one public record is enough, so a host with a private
record among public ones is public), and every connection of its fetch, to itself,
to each redirect hop and to article links found in it, goes only to public
addresses. The check happens where the socket is opened (``_network``), on the very
address the socket then connects to, so a host cannot answer "public" to the check and
"127.0.0.1" to the connection (DNS rebinding).

An origin once seen public stays public for the life of its Fetcher: a hostile
publisher controls its own DNS, and answering "private" for its feed host on a later
poll would otherwise buy its redirects and links the right to go anywhere.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Trust = Literal["public", "private"]
AddressPolicy = Callable[[IPAddress], bool]
"""True when an address is public (a public origin's fetch may connect to it)."""
MAX_REMEMBERED = 4096  # origins remembered as public per Fetcher (oldest forgotten first)


class Resolver(Protocol):
    """Host name -> IP address strings, in the order to try them (the DNS seam).

    Raises OSError (or UnicodeError, for a name IDNA cannot encode) when the name does
    not resolve. Only called for names: an IP literal is used as it is.
    """

    def __call__(self, host: str, port: int) -> Sequence[str]: ...


def system_resolver(host: str, port: int) -> list[str]:
    """``socket.getaddrinfo``: every TCP address of ``host``, duplicates removed, order kept."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(ip: IPAddress) -> bool:
    """Globally routable: not loopback, private (RFC 1918, fc00::/7), link-local, unspecified,
    shared (100.64/10), documentation, multicast or reserved; IPv4-mapped IPv6 judged as IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True, slots=True)
class Address:
    """One resolved address: ``ip`` for the policy, ``text`` to connect to (keeps a scope id)."""

    ip: IPAddress
    text: str


class RefusedAddress(Exception):
    """A public origin's fetch reached a host with no public address (raised at connect)."""

    def __init__(self, host: str, address: Address, url: str = "") -> None:
        self.host, self.address, self.url = host, address, url
        super().__init__(f"{url or host} ({address.ip})")


def literal(host: str) -> Address | None:
    """The address a host *is*, when it is an IP literal (brackets and scope id allowed)."""
    text = host.strip("[]")
    try:
        return Address(ipaddress.ip_address(text.partition("%")[0]), text)
    except ValueError:
        return None


def resolve(resolver: Resolver, host: str, port: int) -> list[Address]:
    """The addresses of ``host``: itself if a literal, else the resolver's answer.

    Answers that are not IP addresses are skipped. Raises what the resolver raises.
    """
    own = literal(host)
    if own is not None:
        return [own]
    found = []
    for text in resolver(host, port):
        address = literal(str(text))
        if address is not None:
            found.append(address)
    return found


@dataclass
class Origins:
    """Decides an origin's trust, remembering the hosts already seen public (see above)."""

    resolver: Resolver
    policy: AddressPolicy
    _public: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def trust(self, host: str, port: int) -> tuple[Trust, list[Address] | None]:
        """The origin's trust class, and the addresses looked up for it (None: none looked up).

        A host that does not resolve is public: nothing will connect to it anyway.
        """
        key = host.lower()
        with self._lock:
            if key in self._public:
                self._public.move_to_end(key)
                return "public", None
        try:
            addresses = resolve(self.resolver, host, port)
        except (OSError, UnicodeError):
            return "public", None
        if addresses and not any(self.policy(a.ip) for a in addresses):
            return "private", addresses
        if addresses:
            self._remember(key)
        return "public", addresses

    def remember(self, host: str) -> None:
        """``host`` is a public origin from now on, whatever it resolves to (known from an
        earlier process: ADR 0026)."""
        self._remember(host.lower())

    def _remember(self, key: str) -> None:
        with self._lock:
            self._public[key] = None
            self._public.move_to_end(key)
            while len(self._public) > MAX_REMEMBERED:
                self._public.popitem(last=False)
