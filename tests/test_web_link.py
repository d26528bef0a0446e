"""``entries.web_link``: an entry's link is the first http(s) candidate once resolved
against the feed's URL. Most links are absolute http(s) URLs that need no resolving;
those are returned without urllib (``_PLAIN_WEB_URL``), which must give exactly what
the resolving path gives."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.entries import _WEB_SCHEMES, text_or_none, web_link

BASES = ["https://news.example.org/world/feed.xml", "http://news.example.org/", "ftp://files.example.org/x"]
PIECES = [
    "http://", "https://", "HTTP://", "a", "b.c", "/", "//", "?", "#", ";", ":", "80", "@", "[", "]",
    "::1", "%20", "%", " ", "\t", "é", "..", ".", "x-y", "~", "'", "(", "\\", "javascript:", "ａ",
    "\u2100", "=", "&", "+", "*", ",", "\x00",
]  # fmt: skip


def resolved(candidate: str, base: str) -> str | None:
    """What ``web_link`` gives for one candidate by resolving it (the path without the shortcut)."""
    text = text_or_none(candidate)
    if text is None:
        return None
    try:
        url = urljoin(base, text)
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in _WEB_SCHEMES else None


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=9).map("".join), st.sampled_from(BASES))
def test_a_link_is_what_resolving_it_gives(candidate: str, base: str) -> None:
    assert web_link([candidate], base) == resolved(candidate, base)


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("https://news.example.org/2024/05/31/nato", "https://news.example.org/2024/05/31/nato"),
        ("https://news.example.org/a/../b", "https://news.example.org/a/../b"),  # as urljoin leaves it
        ("/2024/05/31/nato?utm_source=rss", "https://news.example.org/2024/05/31/nato?utm_source=rss"),
        ("HTTPS://News.Example.org/x", "https://News.Example.org/x"),
        ("http://[::1/x", None),  # urllib refuses the host
        ("javascript:alert(1)", None),
        ("https://user@news.example.org/x", "https://user@news.example.org/x"),
    ],
)
def test_links(candidate: str, expected: str | None) -> None:
    assert web_link([candidate], BASES[0]) == expected
