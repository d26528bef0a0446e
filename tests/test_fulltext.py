"""Full article text: a teaser feed links to a page carrying the whole VOA article in
site chrome; rules fire on words deep in the body, never on the page's furniture."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text

from monitor.app import App
from monitor.extract import article_text
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
