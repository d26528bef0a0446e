"""Full article text: a teaser feed links to a page carrying the whole VOA article in
site chrome; rules fire on words deep in the body, never on the page's furniture."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text

from monitor.app import App
from monitor.extract import Block, Page, article_text, capped, extract_page, merge, trimmed
from monitor.samples import rss_feed, rss_item, voa_article, voa_page
from tests.conftest import Clock, RecordingNotifier, SettingsFactory

RULES = [
    {"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]},
    {"name": "prisoner exchange", "any": ["prisoner exchange"], "notify": ["hook"]},
    {"name": "site furniture", "any": ["newsletter", "cookies", "most popular"], "notify": ["hook"]},
    {"name": "Stoltenberg", "any": ["Stoltenberg"], "notify": ["hook"]},
]


def _teaser_feed(httpserver: HTTPServer) -> bytes:
    article = voa_article()
    item = rss_item(article.headline, httpserver.url_for("/a/voa.html"), article.published, article.teaser)
    return rss_feed("VOA", "https://www.voanews.com/", [item])


def _settings(settings_factory: SettingsFactory, httpserver: HTTPServer, mode: str) -> Any:
    return settings_factory(
        feeds=[{"name": "VOA", "url": httpserver.url_for("/feed.xml"), "full_text": mode}],
        rules=RULES,
    )


def _page_hits(httpserver: HTTPServer) -> int:
    return sum(1 for request, _ in httpserver.log if request.path == "/a/voa.html")


def test_rules_fire_on_the_body_of_the_linked_page(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(_teaser_feed(httpserver))
    httpserver.expect_request("/a/voa.html").respond_with_data(voa_page(), content_type="text/html")
    with App.from_settings(
        _settings(settings_factory, httpserver, "auto"), clock=clock, notifier=notifier
    ) as app:
        app.run_once()
        app.run_once()
    [alert] = notifier.sent
    assert alert.rules == ("ATACMS", "prisoner exchange", "Stoltenberg")
    assert "ATACMS" in alert.snippet.text
    start, end = alert.snippet.highlights[0]
    assert alert.snippet.text[start:end] == "ATACMS"
    assert _page_hits(httpserver) == 1, "a page is read once per article"


@pytest.mark.parametrize(("mode", "hits", "rules"), [("never", 0, ("Stoltenberg",)), ("always", 1, None)])
def test_full_text_modes(
    mode: str,
    hits: int,
    rules: tuple[str, ...] | None,
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    notifier: RecordingNotifier,
    clock: Clock,
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(_teaser_feed(httpserver))
    httpserver.expect_request("/a/voa.html").respond_with_data(voa_page(), content_type="text/html")
    with App.from_settings(
        _settings(settings_factory, httpserver, mode), clock=clock, notifier=notifier
    ) as app:
        app.run_once()
    assert _page_hits(httpserver) == hits
    [alert] = notifier.sent
    assert alert.rules == (rules or ("ATACMS", "prisoner exchange", "Stoltenberg"))


def test_a_long_feed_entry_needs_no_page_in_auto_mode(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    article = voa_article()
    item = rss_item(
        article.headline,
        httpserver.url_for("/a/voa.html"),
        article.published,
        article.teaser,
        article.body_html(),
    )
    httpserver.expect_request("/feed.xml").respond_with_data(rss_feed("VOA", "https://x/", [item]))
    with App.from_settings(
        _settings(settings_factory, httpserver, "auto"), clock=clock, notifier=notifier
    ) as app:
        app.run_once()
    assert _page_hits(httpserver) == 0
    assert notifier.sent[0].rules == ("ATACMS", "prisoner exchange", "Stoltenberg")


def test_a_page_that_fails_is_recorded_and_never_blocks_the_alert(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(_teaser_feed(httpserver))
    httpserver.expect_request("/a/voa.html").respond_with_data("gone", status=404)
    settings = _settings(settings_factory, httpserver, "auto")
    with App.from_settings(settings, clock=clock, notifier=notifier) as app:
        report = app.run_once()
        with app.store.engine.connect() as conn:
            page_error = conn.execute(text("SELECT page_error FROM articles")).scalar_one()
    assert report.outcomes[0].status == "ok"
    assert [a.rules for a in notifier.sent] == [("Stoltenberg",)]
    assert page_error == "fetch: HTTP 404 NOT FOUND"


def test_extraction_drops_navigation_and_footer() -> None:
    body = article_text(voa_page(), "https://www.voanews.com/a/x.html")
    assert "prisoner exchange" in body and "ATACMS" in body
    for furniture in ("newsletter", "cookies", "Most popular", "Privacy policy"):
        assert furniture not in body
    assert article_text(b"   ", "https://x/") == ""
    assert article_text(b"<html><body><script>x()</script></body></html>", "https://x/") == ""


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (304, b"", "fetch: unexpected 304 for an article page"),
        (
            200,
            b"<html><body><script>track()</script></body></html>",
            "extract: no article text found on the page",
        ),
    ],
    ids=["unexpected-304", "no-article-text"],
)
def test_pages_that_give_nothing_are_recorded(
    status: int,
    body: bytes,
    error: str,
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    notifier: RecordingNotifier,
    clock: Clock,
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(_teaser_feed(httpserver))
    httpserver.expect_request("/a/voa.html").respond_with_data(body, status=status, content_type="text/html")
    with App.from_settings(
        _settings(settings_factory, httpserver, "auto"), clock=clock, notifier=notifier
    ) as app:
        app.run_once()
        with app.store.engine.connect() as conn:
            page_error = conn.execute(text("SELECT page_error FROM articles")).scalar_one()
    assert page_error == error
    assert [a.rules for a in notifier.sent] == [("Stoltenberg",)]


# --- how the two extractions are merged (pure decisions) ------------------------------


def blocks(*names: str) -> list[Block]:
    """Blocks of about the same length, each named by its first word."""
    return [Block(f"{name} " + "words of the paragraph " * 5) for name in names]


def names(found: list[Block]) -> list[str]:
    return [b.text.split()[0] for b in found]


LONG = "word " * 50


@pytest.mark.parametrize(
    ("precise", "default", "kept"),
    [
        (["b", "c"], ["b", "c"], ["b", "c"]),
        (["b", "d"], ["b", "c", "d"], ["b", "c", "d"]),
        (["d", "e"], ["a", "b", "c", "lead", "d", "e"], ["b", "c", "lead", "d", "e"]),
        (["b", "c"], ["b", "c", "footer"], ["b", "c"]),
        ([], ["a", "b"], ["a", "b"]),
        (["c"], ["a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e"]),
        (["b", "c"], [], ["b", "c"]),
    ],
    ids=[
        "same",
        "inside",
        "lead-within-three",
        "after-the-end",
        "precision-empty",
        "truncated",
        "default-empty",
    ],
)
def test_default_blocks_join_where_the_article_is(
    precise: list[str], default: list[str], kept: list[str]
) -> None:
    assert names(merge(blocks(*precise), blocks(*default))) == kept


def test_short_link_dense_blocks_are_dropped_from_both_long_ones_kept() -> None:
    precise = [Block("Read more: another story", 0.8), Block("body"), Block(LONG, 1.0)]
    default = [
        Block("Read more: another story", 0.8),
        Block("body"),
        Block("Related: x", 0.9),
        Block(LONG, 1.0),
    ]
    assert [b.text for b in merge(precise, default)] == ["body", LONG]


def test_a_default_block_holding_the_precision_one_is_placed_with_it() -> None:
    """The default extraction kept one big block where precision kept its first part:
    the default blocks before that one are before the article (three of them may be
    its lead), the big block itself is with the article."""
    precise = blocks("first", "second", "third", "fourth")
    big = Block(precise[0].text + " and the rest " * 9)
    default = [*blocks("other", "more", "x", "y", "z"), big, *precise[1:]]
    kept = ["x", "y", "z", "first", "first", "second", "third", "fourth"]
    assert names(merge(precise, default)) == kept


def test_invisible_characters_never_split_words() -> None:
    page = (
        b"<html><body><article><p>" + "Ann Kies\u00adsling hat vie\u00adle wich\u00adti\u00adge".encode() * 30
    )
    text = article_text(page + b"</p></article></body></html>", "https://x/")
    assert "Ann Kiessling hat viele wichtige" in text


@pytest.mark.parametrize(
    ("body", "limit", "expected"),
    [
        (b"<p>short</p>", 100, b"<p>short</p>"),
        (b"<p>a</p><script>" + b"x" * 50 + b"</script><p>b</p>", 30, b"<p>a</p><p>b</p>"),
        (b"<P>a</P><SCRIPT type=x>" + b"x" * 50 + b"</SCRIPT ><p>b</p>", 30, b"<P>a</P><p>b</p>"),
        (b"<p>a</p><!-- " + b"x" * 50 + b" --><p>b</p>", 30, b"<p>a</p><p>b</p>"),
        (b"<p>a</p><style>" + b"x" * 50, 30, b"<p>a</p>"),
        (b"<p>aaaa</p><p>bbbb</p><p>cccc</p>", 20, b"<p>aaaa</p><p>bbbb"),
        (b"x" * 50, 20, b"x" * 20),
    ],
    ids=["under-the-cap", "script", "upper-case", "comment", "unclosed", "cut-at-a-tag", "no-tag"],
)
def test_pages_over_the_cap_lose_scripts_then_their_tail(body: bytes, limit: int, expected: bytes) -> None:
    assert trimmed(body, limit) == expected


def test_trimming_is_linear_on_many_unclosed_scripts() -> None:
    body = b"<p>a</p>" + b"<script>" * 200_000
    assert trimmed(body, 1000) == b"<p>a</p>"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("one two three", 100, "one two three"), ("one two three", 9, "one two"), ("abcdefgh", 4, "abcd")],
    ids=["under", "at-a-word", "one-long-word"],
)
def test_text_is_capped_at_a_word(text: str, limit: int, expected: str) -> None:
    assert capped(text, limit) == expected


def test_extract_page_applies_both_caps() -> None:
    page = Page("https://www.voanews.com/a/x.html", voa_page(), max_bytes=len(voa_page()), max_chars=500)
    text = extract_page(page)
    assert 0 < len(text) <= 500 and text.startswith("NATO")
