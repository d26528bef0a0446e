"""weburl: one rule for "an address monitor can fetch", and it never raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.weburl import web_parts


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://news.example.org/rss", "news.example.org"),
        ("HTTP://News.Example.org:8080/rss?x=1#top", "news.example.org"),
        ("http://[::1]:8080/feed", "::1"),
        ("http://127.0.0.1/feed", "127.0.0.1"),
        ("https://xn--80ak6aa92e.com/", "xn--80ak6aa92e.com"),
        ("ftp://news.example.org/rss", None),
        ("news.example.org/rss", None),
        ("https://", None),
        ("http:///path", None),
        ("http://[::1/feed", None),
        ("http://news.example.org:99999/", None),
        ("http://news.example.org:0/", None),
        ("http://news.example.org:port/", None),
        ("http://\u2100/", None),
        ("http://news\x00.example.org/", None),
        ("http://news.example.org/a\tb", None),
        ("", None),
    ],
    ids=[
        "https",
        "cases-port-query-fragment",
        "ipv6",
        "ipv4",
        "punycode",
        "ftp",
        "no-scheme",
        "no-host",
        "empty-host",
        "broken-ipv6",
        "port-out-of-range",
        "port-zero",
        "port-not-a-number",
        "host-changes-under-nfkc",
        "nul",
        "tab",
        "empty",
    ],
)
def test_web_parts(url: str, host: str | None) -> None:
    parts = web_parts(url)
    assert (parts.hostname if parts else None) == host


URLS = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, rest: scheme + rest,
        st.sampled_from(["http://", "https://", "HTTP://", "http://[", "https://a.example:", "//"]),
        st.text(max_size=40),
    ),
)


@given(url=URLS)
def test_any_text_is_a_web_address_or_none_and_never_raises(url: str) -> None:
    parts = web_parts(url)
    if parts is not None:
        assert parts.scheme.lower() in ("http", "https")
        assert parts.hostname
        assert parts.port is None or 0 < parts.port < 65536
        assert not any(ord(c) < 0x20 or c == "\x7f" for c in url)
