"""Stable article identity: guid, else the normalised link, else a hash of the text.

Changing anything here changes which stored articles count as "seen" and would
re-alert old stories, so the rules are pinned by tests (see ADR 0002).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_")
_TRACKING = frozenset(
    [
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "ocid",
        "cmpid",
        "ref_src",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "_ga",
        "_gl",
    ]
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_KEY = 512


def is_tracking_param(name: str) -> bool:
    """Query parameters that only say where a click came from."""
    lowered = name.lower()
    return lowered in _TRACKING or lowered.startswith(_TRACKING_PREFIXES)


@lru_cache(maxsize=2048)  # an entry's link is normalised for its alias and for its key
def normalize_link(url: str) -> str:
    """Lower-case scheme and host, drop default port, fragment and tracking parameters.

    Anything that is not an absolute URL with a host (a bad port, a broken IPv6
    literal, a bare word) comes back as it was, only stripped of surrounding blanks.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    if not host:
        return url
    scheme = parts.scheme.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query, doseq=True), "")).strip()


def digest(*parts: str) -> str:
    """A short, stable hash of some text parts."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def entry_key(guid: str | None, link: str | None, title: str, text: str) -> str:
    """The identity of an entry within its feed; at most MAX_KEY characters."""
    if guid and guid.strip():
        key = "guid:" + guid.strip()
    elif link and link.strip():
        key = "link:" + normalize_link(link)
    else:
        key = "hash:" + digest(title.strip(), text.strip())
    return capped(key)


def told_apart(key: str, title: str, link: str | None) -> str:
    """The key of one of several different entries that share ``key`` in one document."""
    return capped(f"{key}#{digest(title, link or '')[:12]}")


def capped(key: str) -> str:
    """A key of at most MAX_KEY characters: a longer one becomes its prefix, ``sha256:``
    and a hash of the whole key."""
    if len(key) > MAX_KEY:
        key = key[:5] + "sha256:" + digest(key)
    return key


def alias_key(link: str | None, title: str) -> str | None:
    """A second identity for an entry: its normalised link and its title, case-folded.

    Some publishers give an entry a new guid on every request while its link and
    title stay; the store treats an entry whose alias it has already seen as seen
    (ADR 0002). None without both a link and a title: a hash of text alone says too
    little to stand for an entry across polls.
    """
    if not (link and link.strip() and title and title.strip()):
        return None
    return "lt:" + digest(normalize_link(link), " ".join(title.casefold().split()))
