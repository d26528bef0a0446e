"""identity: the article key (guid > normalised link > hash) and link normalisation.

A change here re-alerts stored articles, so these tables pin the rules (ADR 0002).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random
from urllib.parse import quote
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.identity import MAX_KEY, alias_key, digest, entry_key, is_tracking_param, normalize_link
from monitor.models import Fetched
from monitor.parse import parse


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("HTTPS://News.Example.COM/Europe/Story", "https://news.example.com/Europe/Story"),
        ("https://news.example.com:443/a", "https://news.example.com/a"),
        ("http://news.example.com:80/a", "http://news.example.com/a"),
        ("http://news.example.com:8080/a", "http://news.example.com:8080/a"),
        ("https://news.example.com:80/a", "https://news.example.com:80/a"),
        ("https://news.example.com", "https://news.example.com/"),
        ("https://news.example.com/a#comments", "https://news.example.com/a"),
        ("https://news.example.com/a?id=7#", "https://news.example.com/a?id=7"),
        (
            "https://news.example.com/a?utm_source=rss&utm_medium=feed&utm_campaign=europe",
            "https://news.example.com/a",
        ),
        ("https://news.example.com/a?UTM_Source=rss&Utm_Term=x", "https://news.example.com/a"),
        ("https://news.example.com/a?fbclid=IwAR0abc", "https://news.example.com/a"),
        ("https://news.example.com/a?gclid=Cj0KCQ&dclid=1&msclkid=2", "https://news.example.com/a"),
        ("https://news.example.com/a?mc_cid=1&mc_eid=2&_ga=3&at_medium=4", "https://news.example.com/a"),
        (
            "https://news.example.com/a?z=1&utm_source=rss&id=7637601&fbclid=x&b=2&a=3",
            "https://news.example.com/a?z=1&id=7637601&b=2&a=3",
        ),
        ("https://news.example.com/a?x=1&x=2&utm_term=z&x=3", "https://news.example.com/a?x=1&x=2&x=3"),
        ("https://news.example.com/a?q=Kyiv%20strikes", "https://news.example.com/a?q=Kyiv+strikes"),
        ("https://news.example.com/a?utmost=1&utm=2", "https://news.example.com/a?utmost=1&utm=2"),
        ("https://news.example.com/a?", "https://news.example.com/a"),
        ("  https://news.example.com/a \n", "https://news.example.com/a"),
        ("https://editor:secret@news.example.com/a", "https://news.example.com/a"),
        ("http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
        ("http://[2001:db8::1]:8443/a", "http://[2001:db8::1]:8443/a"),
        ("https://news.example.com/A%2Fb/./c", "https://news.example.com/A%2Fb/./c"),
    ],
    ids=[
        "scheme-host-case",
        "https-default-port",
        "http-default-port",
        "other-port",
        "default-port-of-other-scheme",
        "empty-path",
        "fragment",
        "empty-fragment",
        "utm-only",
        "utm-any-case",
        "fbclid",
        "gclid-family",
        "mailchimp-ga-at",
        "others-kept-in-order",
        "repeated-params",
        "re-encoded-space",
        "utm-lookalikes-kept",
        "empty-query",
        "surrounding-blanks",
        "userinfo",
        "ipv6-default-port",
        "ipv6-port",
        "path-untouched",
    ],
)
def test_normalize_link(url: str, normalised: str) -> None:
    assert normalize_link(url) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "  https://news.example.com:99999/a  ",
        "http://[::1/a",
        "https://news.example.com:port/a",
        "not a url",
        "/europe/2024/05/31/story?utm_source=rss",
        "urn:news-example:7637655",
        "",
    ],
    ids=["port-out-of-range", "broken-ipv6", "named-port", "words", "relative", "urn", "empty"],
)
def test_bad_or_hostless_urls_come_back_stripped(url: str) -> None:
    assert normalize_link(url) == url.strip()


@pytest.mark.parametrize(
    ("name", "tracking"),
    [
        ("utm_source", True),
        ("UTM_CAMPAIGN", True),
        ("fbclid", True),
        ("gclid", True),
        ("mtm_kwd", True),
        ("id", False),
        ("utm", False),
        ("page", False),
    ],
)
def test_is_tracking_param(name: str, tracking: bool) -> None:
    assert is_tracking_param(name) is tracking


LINK = "https://news.example.com/europe/zelenskyy-prisoner-exchange?id=7637601"


@pytest.mark.parametrize(
    ("guid", "link", "title", "text", "key"),
    [
        ("urn:news-example:7637655", LINK, "Title", "Text", "guid:urn:news-example:7637655"),
        ("  7637800 \n", LINK, "Title", "Text", "guid:7637800"),
        (None, LINK + "&utm_source=rss#top", "Title", "Text", "link:" + LINK),
        ("", LINK, "Title", "Text", "link:" + LINK),
        ("   ", " " + LINK + " ", "Title", "Text", "link:" + LINK),
        (None, None, "Correction", "It was 75.", "hash:" + digest("Correction", "It was 75.")),
        (None, "  ", " Correction ", " It was 75. ", "hash:" + digest("Correction", "It was 75.")),
        (None, None, "", "", "hash:" + digest("", "")),
    ],
    ids=[
        "guid",
        "guid-stripped",
        "link-normalised",
        "empty-guid",
        "blank-guid",
        "hash",
        "hash-stripped",
        "nothing",
    ],
)
def test_entry_key_precedence(guid: str | None, link: str | None, title: str, text: str, key: str) -> None:
    assert entry_key(guid, link, title, text) == key


def test_hash_keys_are_pinned() -> None:
    """The hash is part of the stored identity: changing it re-alerts old entries."""
    assert digest("Correction", "It was 75.") == "400a7929e3eb7081b14dcd66589a3894"
    assert entry_key(None, None, "Kharkiv", "Strike") == "hash:1cac2cf672ef2095a68a029cd1c4f43b"
    assert entry_key("g" * 600, None, "", "") == "guid:sha256:" + digest("guid:" + "g" * 600)


@pytest.mark.parametrize(
    ("guid", "link", "prefix"),
    [
        ("g" * (MAX_KEY - len("guid:")), None, None),
        ("g" * (MAX_KEY - len("guid:") + 1), None, "guid:sha256:"),
        ("g" * 5000, None, "guid:sha256:"),
        (None, "https://news.example.com/" + "a" * 600, "link:sha256:"),
    ],
    ids=["guid-at-limit", "guid-one-over", "guid-huge", "link-long"],
)
def test_long_keys_are_capped(guid: str | None, link: str | None, prefix: str | None) -> None:
    key = entry_key(guid, link, "t", "x")
    assert len(key) <= MAX_KEY
    if prefix is None:
        assert key == f"guid:{guid}"
    else:
        assert key.startswith(prefix)
        assert key == entry_key(guid, link, "other title", "other text")


def test_long_keys_of_different_entries_differ() -> None:
    assert entry_key("g" * 600, None, "", "") != entry_key("g" * 599 + "h", None, "", "")


# --- properties -----------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_characters="&=#"), min_size=1, max_size=8).filter(
    lambda n: not is_tracking_param(n)
)
values = st.text(st.characters(codec="utf-8"), max_size=12)
hosts = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?(\.[A-Za-z]{2,6}){1,2}\Z")


@st.composite
def web_urls(draw: st.DrawFn) -> tuple[str, list[str], str]:
    """An absolute URL as its prefix (scheme, host, port, path), its query pairs and a fragment."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = draw(st.lists(st.text(st.characters(codec="utf-8"), max_size=6), max_size=3))
    pairs = draw(st.lists(st.tuples(names, values), max_size=4))
    query = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs]
    fragment = draw(st.sampled_from(["", "#", "#top", "#post-2"]))
    prefix = f"{scheme}://{draw(hosts)}{port}/" + "/".join(quote(p) for p in path)
    return prefix, query, fragment


def build(prefix: str, query: list[str], fragment: str) -> str:
    return prefix + ("?" + "&".join(query) if query else "") + fragment


@given(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()), st.text(), st.text())
def test_entry_key_is_deterministic_and_bounded(
    guid: str | None, link: str | None, title: str, text: str
) -> None:
    key = entry_key(guid, link, title, text)
    assert key == entry_key(guid, link, title, text)
    assert len(key) <= MAX_KEY
    assert key.startswith(("guid:", "link:", "hash:"))


@given(st.one_of(st.text(), web_urls().map(lambda parts: build(*parts))))
def test_normalize_link_is_idempotent(url: str) -> None:
    once = normalize_link(url)
    assert normalize_link(once) == once


@given(
    web_urls(),
    st.sampled_from(
        ["utm_source", "utm_medium", "utm_campaign", "UTM_Content", "utm_term", "fbclid", "gclid"]
    ),
    values,
    st.data(),
)
def test_a_tracking_parameter_never_changes_the_key(
    url: tuple[str, list[str], str], name: str, value: str, data: st.DataObject
) -> None:
    prefix, query, fragment = url
    at = data.draw(st.integers(0, len(query)))
    tracked = [*query[:at], f"{name}={quote(value, safe='')}", *query[at:]]
    plain_link, tracked_link = build(prefix, query, fragment), build(prefix, tracked, fragment)
    assert entry_key(None, tracked_link, "t", "x") == entry_key(None, plain_link, "t", "x")
    assert entry_key("guid-1", tracked_link, "t", "x") == "guid:guid-1"


# --- key stability through parse (ADR 0013) --------------------------------------------


@dataclass(frozen=True)
class Item:
    """One generated RSS item; titles are unique, guids and links drawn from small pools
    so that documents share them between different entries (the odd publishers' case)."""

    title: str
    guid: str | None
    link: str | None
    summary: str

    def xml(self, summary: str | None = None) -> str:
        parts = [f"<title>{escape(self.title)}</title>"]
        if self.guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(self.guid)}</guid>')
        if self.link is not None:
            parts.append(f"<link>{escape(self.link)}</link>")
        parts.append(f"<description>{escape(self.summary if summary is None else summary)}</description>")
        return "<item>" + "".join(parts) + "</item>"


words = st.text(st.sampled_from("abcdefgÄЖ"), min_size=1, max_size=12)
items = st.lists(
    st.builds(
        Item,
        title=words,
        guid=st.one_of(st.none(), st.sampled_from(["g1", "g2", "same", " g1 "])),
        link=st.one_of(
            st.none(),
            st.sampled_from(["https://x.example/a", "https://x.example/b", "https://x.example/a#live-2"]),
            words.map(lambda w: f"https://x.example/{quote(w)}"),
        ),
        summary=words,
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda item: item.title,
)


def keys_of(*documents: str) -> dict[str, str]:
    """Title -> key, for a document of these items."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        + "".join(documents)
        + "</channel></rss>"
    ).encode()
    fetched = Fetched(
        url="https://x.example/feed",
        final_url="https://x.example/feed",
        status=200,
        body=body,
        content_type="application/rss+xml",
        etag=None,
        last_modified=None,
        fetched_at=datetime(2024, 5, 31, 18, 0, tzinfo=UTC),
    )
    parsed = parse(fetched).entries
    assert len({e.key for e in parsed}) == len(parsed)
    return {e.title: e.key for e in parsed}


@settings(max_examples=150, deadline=None)
@given(items, st.randoms(use_true_random=False))
def test_an_entry_keeps_its_key_when_reparsed_reordered_or_edited(feed: list[Item], random: Random) -> None:
    """Re-parsed: the same keys. Re-ordered: each entry keeps its key (no entry's key depends
    on where it stands). Summaries edited: every key not made from the text is unchanged."""
    keys = keys_of(*(item.xml() for item in feed))
    assert len(keys) == len(feed)  # unique titles: no entry is a repeat of another
    assert keys_of(*(item.xml() for item in feed)) == keys
    shuffled = random.sample(feed, len(feed))
    assert keys_of(*(item.xml() for item in shuffled)) == keys
    edited = keys_of(*(item.xml(summary=item.summary + " (updated)") for item in feed))
    assert {t: k for t, k in edited.items() if not k.startswith("hash:")} == {
        t: k for t, k in keys.items() if not k.startswith("hash:")
    }


@settings(max_examples=150, deadline=None)
@given(items)
def test_a_new_entry_never_takes_the_key_of_an_old_one(feed: list[Item]) -> None:
    """The next poll brings one more entry, at the top: it gets a key no old entry had, so
    it is never mistaken for one already seen (which would lose its alert)."""
    new, *old = feed
    before = keys_of(*(item.xml() for item in old)) if old else {}
    after = keys_of(*(item.xml() for item in feed))
    assert after[new.title] not in before.values()


def test_parsed_entries_carry_the_alias_key_of_their_link_and_title() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>D</title>'
        b"<item><title>Prisoner  Exchange</title><link>HTTPS://News.Example/a?utm_source=x</link>"
        b"<guid>g1</guid></item><item><title>No link</title>"
        b'<guid isPermaLink="false">g2</guid></item></channel></rss>'
    )
    fetched = Fetched(
        "https://news.example/f", "https://news.example/f", 200, body, None, None, None, datetime.now(UTC)
    )
    linked, unlinked = parse(fetched).entries
    assert (
        linked.alias
        == alias_key(linked.link, linked.title)
        == alias_key("https://news.example/a", "prisoner exchange")
    )
    assert unlinked.alias is None
