"""Whether a text is an address monitor can fetch: http or https, a host, a port in
range, no control character, and nothing ``urllib.parse`` refuses (it raises ValueError
on a broken IPv6 literal ``http://[::1``, a port that is no number or out of range, a
host that changes under NFKC). One rule for the config, ``feeds add``, ``feeds import``
and discovery, so a hostile page or OPML file meets the same one. Pure; no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WEB_SCHEMES = frozenset(["http", "https"])


def web_parts(url: str) -> SplitResult | None:
    """``url`` split, when it is a web address monitor can fetch; else None."""
    if _CONTROL.search(url):
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _WEB_SCHEMES or not host or port == 0:
        return None
    return parts
