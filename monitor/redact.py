"""Keeping secrets out of everything monitor prints: logs, errors, ``status``, ``check``.

Secrets are the values substituted from ``${VAR}`` (or read from ``VAR_FILE``) and the
token-like parts of channel URLs (passwords, path segments and query values that look like keys). Any of them
found in text is replaced by ``***``; so is the password of any ``scheme://user:pass@``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<password>[^/\s@]+)@", re.I)
_MIN = 6


def _looks_like_token(part: str) -> bool:
    """Long enough and not a plain word: has a digit, or mixes cases, or symbols."""
    if len(part) < _MIN:
        return False
    has_digit = any(c.isdigit() for c in part)
    mixed = part.lower() != part and part.upper() != part
    symbols = any(not c.isalnum() for c in part.strip("#@"))
    return has_digit or mixed or symbols


def secrets_in_url(url: str) -> set[str]:
    """The parts of an Apprise URL that may be credentials."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    found = set()
    if parts.password:
        found.update({parts.password, unquote(parts.password)})
    if parts.username and _looks_like_token(parts.username):
        found.update({parts.username, unquote(parts.username)})
    segments = [parts.netloc.rsplit("@", 1)[-1], *parts.path.split("/")]
    if parts.scheme.lower() not in ("json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos"):
        found.update(s for s in segments if _looks_like_token(s))
    found.update(v for _, v in parse_qsl(parts.query) if _looks_like_token(v))
    return {s for s in found if len(s) >= _MIN}


_GIVEN_MIN = 4
"""A substituted value this short is no secret (a port, a flag) and masking it would
blank ordinary words; anything longer is masked, whatever it looks like."""


def _spellings(secret: str) -> set[str]:
    """A secret as text may show it: as is, and percent-encoded (a URL's path or query)."""
    return {secret, quote(secret, safe=""), quote(secret, safe="/:@"), quote_plus(secret)}


class Redactor:
    """Replaces known secrets (and URL passwords) in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found = {spelled for s in secrets if len(s) >= _GIVEN_MIN for spelled in _spellings(s)}
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text
