"""Polite, adaptive polling with an injected clock: backoff, Retry-After, permanent
redirects, 410 Gone and the server's own max-age."""

from __future__ import annotations

from datetime import timedelta

from pytest_httpserver import HTTPServer

from monitor.app import App
from monitor.config import PollSettings
from monitor.decide import error_backoff, polite_interval
from monitor.samples import voa_feed
from tests.conftest import Clock, RecordingNotifier, SettingsFactory

MIN = timedelta(minutes=1)


def _app(settings_factory: SettingsFactory, url: str, clock: Clock, notifier: RecordingNotifier) -> App:
    settings = settings_factory(
        poll={"interval": "10m", "max_backoff": "6h"},
        feeds=[{"name": "VOA", "url": url}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )
    return App.from_settings(settings, clock=clock, notifier=notifier, strict=True)


def test_backoff_doubles_then_resets_on_success(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    httpserver.expect_request("/f").respond_with_data("down", status=500)
    with _app(settings_factory, httpserver.url_for("/f"), clock, notifier) as app:
        app.sync_feeds()
        waits = []
        for _ in range(4):
            [feed] = app.store.feeds(due_at=clock.now)
            app.poll_one(feed)
            [status] = app.store.feed_statuses()
            assert status.next_poll_at is not None
            waits.append(status.next_poll_at - clock.now)
            clock.now = status.next_poll_at
        assert waits == [10 * MIN, 20 * MIN, 40 * MIN, 80 * MIN]
        httpserver.clear()
        httpserver.expect_request("/f").respond_with_data(voa_feed())
        [feed] = app.store.feeds(due_at=clock.now)
        app.poll_one(feed)
        [status] = app.store.feed_statuses()
    assert status.error_count == 0 and status.next_poll_at == clock.now + 10 * MIN


def test_retry_after_pushes_the_next_poll(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    httpserver.expect_request("/f").respond_with_data("", status=429, headers={"Retry-After": "3600"})
    with _app(settings_factory, httpserver.url_for("/f"), clock, notifier) as app:
        app.run_once()
        [status] = app.store.feed_statuses()
    assert status.next_poll_at == clock.now + timedelta(hours=1)
    assert status.last_error == "fetch: HTTP 429 TOO MANY REQUESTS"


def test_a_permanent_redirect_moves_the_feed(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(voa_feed())
    with _app(settings_factory, httpserver.url_for("/old"), clock, notifier) as app:
        app.run_once()
        clock.advance(timedelta(minutes=10))
        app.run_once()
        [status] = app.store.feed_statuses()
    assert status.fetch_url == httpserver.url_for("/new")
    assert [r.path for r, _ in httpserver.log] == ["/old", "/new", "/new"]
    assert len(notifier.sent) == 1


def test_a_temporary_redirect_does_not_move_the_feed(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    httpserver.expect_request("/old").respond_with_data("", status=302, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(voa_feed())
    with _app(settings_factory, httpserver.url_for("/old"), clock, notifier) as app:
        app.run_once()
        [status] = app.store.feed_statuses()
    assert status.fetch_url is None


def test_410_gone_disables_the_feed(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    httpserver.expect_request("/f").respond_with_data("", status=410)
    with _app(settings_factory, httpserver.url_for("/f"), clock, notifier) as app:
        report = app.run_once()
        clock.advance(timedelta(days=1))
        assert app.store.feeds(due_at=clock.now) == []
        second = app.run_once()
        [status] = app.store.feed_statuses()
    assert report.outcomes[0].error == "fetch: HTTP 410 Gone: the publisher removed this feed"
    assert second.outcomes == ()
    assert status.disabled == "fetch: HTTP 410 Gone: the publisher removed this feed"
    assert len(httpserver.log) == 1


def test_max_age_asks_for_slower_polling(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    httpserver.expect_request("/f").respond_with_data(
        voa_feed(), headers={"Cache-Control": "public, max-age=1800"}
    )
    with _app(settings_factory, httpserver.url_for("/f"), clock, notifier) as app:
        app.run_once()
        [status] = app.store.feed_statuses()
    assert status.next_poll_at == clock.now + timedelta(minutes=30)


def test_interval_arithmetic() -> None:
    poll = PollSettings()
    assert polite_interval(10 * MIN, None, poll) == 10 * MIN
    assert polite_interval(10 * MIN, 60, poll) == 10 * MIN
    assert polite_interval(10 * MIN, 7 * 86400, poll) == timedelta(hours=6)
    assert polite_interval(10 * MIN, 3600, PollSettings(honor_cache_hints=False)) == 10 * MIN
    assert error_backoff(10 * MIN, 30, timedelta(hours=6)) == timedelta(hours=6)
    assert error_backoff(10 * MIN, 1, timedelta(hours=6), retry_after=7200) == timedelta(hours=2)


def test_an_identical_body_without_validators_is_not_parsed_again(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    httpserver.expect_request("/f").respond_with_data(voa_feed())
    with _app(settings_factory, httpserver.url_for("/f"), clock, notifier) as app:
        first = app.run_once()
        clock.advance(timedelta(minutes=10))
        second = app.run_once()
        httpserver.clear()
        httpserver.expect_request("/f").respond_with_data(voa_feed(with_content=False))
        clock.advance(timedelta(minutes=10))
        third = app.run_once()
    assert [o.status for o in (*first.outcomes, *second.outcomes, *third.outcomes)] == [
        "ok",
        "not_modified",
        "ok",
    ]


def test_rss_ttl_asks_for_slower_polling(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    body = voa_feed().replace(b"<description>monitor sample feed</description>", b"<ttl>45</ttl>")
    httpserver.expect_request("/f").respond_with_data(body)
    with _app(settings_factory, httpserver.url_for("/f"), clock, notifier) as app:
        app.run_once()
        [status] = app.store.feed_statuses()
    assert status.next_poll_at == clock.now + timedelta(minutes=45)


def test_a_gone_feed_taken_out_of_the_config_and_put_back_is_polled_again(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, notifier: RecordingNotifier
) -> None:
    """A 410 that was a publisher's (or a CDN's) mistake: the README's way back was a
    new URL, since the old row came back still disabled; now removing the feed from the
    config and adding it again enables it."""
    served = httpserver.expect_request("/f")
    served.respond_with_data("", status=410)
    url = httpserver.url_for("/f")
    with _app(settings_factory, url, clock, notifier) as app:
        app.run_once()
        app.reload(settings_factory(feeds=[], rules=[]))
        app.sync_feeds()
        served.respond_with_data(voa_feed(), content_type="application/rss+xml")
        settings = settings_factory(
            feeds=[{"name": "VOA", "url": url}],
            rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
        )
        app.reload(settings)
        clock.advance(timedelta(minutes=1))
        again = app.run_once()
        [status] = app.store.feed_statuses()
    assert [(o.status, o.new) for o in again.outcomes] == [("ok", 1)]
    assert status.disabled is None
