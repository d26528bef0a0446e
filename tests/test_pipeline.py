"""End to end through real boundaries: a loopback feed server, a real SMTP server
(aiosmtpd) via Apprise ``mailto://``, a real JSON webhook via ``json://``, Slack via
Apprise's own plugin with its HTTPS call captured at the transport (``responses``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
import responses
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import App
from monitor.config import Settings
from monitor.samples import rss_feed, rss_item, voa_article, voa_feed
from tests.conftest import Clock, JsonSink, RecordingNotifier, SettingsFactory, SmtpSink, free_port

SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#newsroom"
SLACK_HOOK = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
HOSTILE_TITLE = (
    'Prisoner exchange <script>alert(1)</script> <!channel> <http://evil.example|click> *bold* & "q"'
)


def _parts(message: Message) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


@pytest.fixture
def slack() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru("http://127.0.0.1")
        rsps.add(responses.POST, SLACK_HOOK, body="ok", status=200)
        yield rsps


def _slack_payloads(rsps: Any) -> list[dict[str, Any]]:
    return [json.loads(call.request.body) for call in rsps.calls if call.request.url == SLACK_HOOK]


def _settings(
    settings_factory: SettingsFactory, url: str, smtp: SmtpSink, sink: JsonSink, **extra: Any
) -> Settings:
    return settings_factory(
        poll={"first_poll": "recent"},
        timezone="Europe/Kyiv",
        channels={"email": smtp.url(), "hook": sink.url(), "slack": SLACK_URL},
        feeds=[{"name": "VOA News", "url": url}],
        rules=[
            {"name": "prisoner exchange", "any": ["prisoner exchange"], "notify": ["email", "hook", "slack"]},
            {"name": "ATACMS", "all": ["ATACMS"], "notify": ["email", "hook"]},
            {"name": "Taiwan", "any": ["Taiwan Strait"], "notify": ["email"]},
        ],
        **extra,
    )


def test_matching_article_reaches_email_webhook_and_slack_once(
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    smtp_server: SmtpSink,
    json_sink: JsonSink,
    slack: Any,
    clock: Clock,
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed(), content_type="application/rss+xml")
    settings = _settings(settings_factory, httpserver.url_for("/voa.xml"), smtp_server, json_sink)

    with App.from_settings(settings, clock=clock, strict=True) as app:
        first = app.run_once()
        assert [(o.status, o.new, o.matched, o.sent) for o in first.outcomes] == [("ok", 1, 1, 3)]

        [mail] = smtp_server.inbox.wait_for(1)
        assert mail["Subject"] == "[prisoner exchange, ATACMS] " + voa_article().headline
        parts = _parts(mail)
        assert set(parts) == {"text/plain", "text/html"}
        assert "<mark" in parts["text/html"] and ">prisoner exchange</mark>" in parts["text/html"]
        assert "2024-05-31 20:42 EEST" in parts["text/plain"]
        assert "prisoner exchange" in parts["text/plain"]

        [post] = json_sink.inbox.wait_for(1)
        assert post["title"].startswith("[prisoner exchange, ATACMS] NATO leader")
        assert "«prisoner exchange»" in post["message"]
        assert voa_article().link in post["message"]

        [payload] = _slack_payloads(slack)
        body = json.dumps(payload)
        assert f"<{voa_article().link}|" in body
        assert "*prisoner exchange*" in body

        second = app.run_once()
        assert [(o.status, o.new, o.sent) for o in second.outcomes] == [("not_modified", 0, 0)]
        assert len(smtp_server.messages) == 1 and len(json_sink.posts) == 1
        assert len(_slack_payloads(slack)) == 1

        clock.advance(timedelta(minutes=30))
        extra = rss_item(
            "Second prisoner swap agreed",
            "https://www.voanews.com/a/second-exchange/1.html",
            clock.now - timedelta(minutes=5),
            "Kyiv and Moscow agreed another prisoner exchange, officials said.",
        )
        httpserver.clear()
        httpserver.expect_request("/voa.xml").respond_with_data(voa_feed(extra_items=(extra,)))
        third = app.run_once()
        assert [(o.new, o.matched, o.sent) for o in third.outcomes] == [(1, 1, 3)]
        assert len(smtp_server.inbox.wait_for(2)) == 2
        assert len(json_sink.inbox.wait_for(2)) == 2
        assert len(_slack_payloads(slack)) == 2
        assert smtp_server.messages[1]["Subject"] == "[prisoner exchange] Second prisoner swap agreed"


def test_hostile_title_is_escaped_for_every_format(
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    smtp_server: SmtpSink,
    json_sink: JsonSink,
    slack: Any,
    clock: Clock,
) -> None:
    item = rss_item(
        HOSTILE_TITLE + "\r\nBcc: victim@example.org",
        "javascript:alert(1)",
        clock.now - timedelta(hours=1),
        "<img src=x onerror=alert(1)> A prisoner exchange <b>was</b> agreed.",
        guid="hostile-1",
    )
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss_feed("Hostile", "https://x.example/", [item])
    )
    settings = _settings(settings_factory, httpserver.url_for("/feed.xml"), smtp_server, json_sink)

    with App.from_settings(settings, clock=clock, strict=True) as app:
        app.run_once()

    [mail] = smtp_server.inbox.wait_for(1)
    assert mail["Bcc"] is None
    assert "\n" not in str(mail["Subject"])
    html = _parts(mail)["text/html"]
    assert "<script>" not in html and "&amp; &quot;q&quot;" in html
    assert "javascript:" not in html
    assert "onerror" not in html
    [payload] = _slack_payloads(slack)
    text = json.dumps(payload)
    assert "<!channel>" not in text
    assert "<http://evil.example|click>" not in text
    assert "javascript:" not in text


def test_failing_feeds_do_not_stop_the_others(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    httpserver.expect_request("/good.xml").respond_with_data(voa_feed())
    httpserver.expect_request("/500.xml").respond_with_data("boom", status=500)
    httpserver.expect_request("/page.html").respond_with_data(
        "<!DOCTYPE html><html><body>Not a feed</body></html>", content_type="text/html"
    )
    refused = f"http://127.0.0.1:{free_port()}/feed.xml"
    settings = settings_factory(
        feeds=[
            {"name": "refused", "url": refused},
            {"name": "server error", "url": httpserver.url_for("/500.xml")},
            {"name": "html page", "url": httpserver.url_for("/page.html")},
            {"name": "good", "url": httpserver.url_for("/good.xml")},
        ],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        report = app.run_once()
        statuses = {s.name: s for s in app.store.feed_statuses()}

    outcomes = {o.feed: o for o in report.outcomes}
    assert outcomes["good"].status == "ok" and outcomes["good"].sent == 1
    assert [a.feed for a in notifier.sent] == ["good"]
    assert "cannot connect" in (outcomes["refused"].error or "")
    assert outcomes["server error"].error == "fetch: HTTP 500 INTERNAL SERVER ERROR"
    assert outcomes["html page"].error == "parse: not a feed (got an HTML page)"
    for name in ("refused", "server error", "html page"):
        assert statuses[name].error_count == 1
        assert statuses[name].last_error == outcomes[name].error
        assert statuses[name].last_success_at is None
    assert statuses["good"].error_count == 0 and statuses["good"].articles == 1


def _voa_atacms(settings_factory: SettingsFactory, httpserver: HTTPServer, **overrides: Any) -> Settings:
    """Settings with the loopback VOA feed and its ATACMS rule alerting ``hook``."""
    return settings_factory(
        feeds=[{"name": "VOA", "url": httpserver.url_for("/voa.xml")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
        **overrides,
    )


def _conditional(request: Request) -> Response:
    if request.headers.get("If-None-Match") == '"v1"':
        assert request.headers.get("If-Modified-Since") == "Fri, 31 May 2024 17:45:00 GMT"
        return Response(status=304)
    return Response(
        voa_feed(),
        headers={"ETag": '"v1"', "Last-Modified": "Fri, 31 May 2024 17:45:00 GMT"},
        content_type="application/rss+xml",
    )


def test_validators_are_sent_and_304_parses_nothing(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_handler(_conditional)
    settings = _voa_atacms(settings_factory, httpserver)
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        first = app.run_once()
        clock.advance(timedelta(minutes=10))
        second = app.run_once()
        [feed] = app.store.feed_statuses()

    assert [o.status for o in first.outcomes] == ["ok"]
    assert [(o.status, o.new) for o in second.outcomes] == [("not_modified", 0)]
    first_request, second_request = (r for r, _ in httpserver.log)
    assert "If-None-Match" not in first_request.headers
    assert second_request.headers["If-None-Match"] == '"v1"'
    assert feed.last_success_at == clock.now and feed.articles == 1
    assert len(notifier.sent) == 1


@pytest.mark.parametrize(
    ("first_poll", "expected"),
    [("recent", ["fresh"]), ("all", ["fresh", "old", "undated"]), ("none", [])],
    ids=["recent", "all", "none"],
)
def test_first_poll_policy(
    first_poll: str,
    expected: list[str],
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    notifier: RecordingNotifier,
    clock: Clock,
) -> None:
    items = [
        rss_item("fresh ATACMS", "https://x.example/fresh", clock.now - timedelta(hours=2), "ATACMS"),
        rss_item("old ATACMS", "https://x.example/old", clock.now - timedelta(days=3), "ATACMS"),
    ]
    undated = "<item><title>undated ATACMS</title><link>https://x.example/undated</link></item>"
    httpserver.expect_request("/f.xml").respond_with_data(
        rss_feed("F", "https://x.example/", [*items, undated])
    )
    settings = settings_factory(
        poll={"first_poll": first_poll, "recent_window": "24h"},
        feeds=[{"name": "F", "url": httpserver.url_for("/f.xml")}],
        # one alert per article: the three look alike and would fold into one story
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"], "stories": "each"}],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        report = app.run_once()
        [status] = app.store.feed_statuses()
    assert report.outcomes[0].new == 3 and status.articles == 3
    assert sorted(a.title.split()[0] for a in notifier.sent) == sorted(expected)


def test_rules_merge_into_one_message_per_channel(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    settings = settings_factory(
        channels={"a": "json://127.0.0.1:9/a", "b": "json://127.0.0.1:9/b"},
        feeds=[{"name": "VOA", "url": httpserver.url_for("/voa.xml")}],
        rules=[
            {"name": "swap", "any": ["prisoner exchange"], "notify": ["a", "b"]},
            {"name": "missiles", "all": ["ATACMS"], "notify": ["a"]},
            {"name": "stoltenberg", "any": ["Stoltenberg"], "notify": ["a"]},
        ],
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
    by_channel = {a.channel: a.rules for a in notifier.sent}
    assert by_channel == {"a": ("swap", "missiles", "stoltenberg"), "b": ("swap",)}
    assert len(notifier.sent) == 2


def test_a_failed_send_is_recorded_and_retried_later(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    settings = settings_factory(
        channels={"down": "json://127.0.0.1:9/down", "up": "json://127.0.0.1:9/up"},
        delivery={"backoff": ["1m", "5m"]},
        feeds=[{"name": "VOA", "url": httpserver.url_for("/voa.xml")}],
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["down", "up"]}],
    )
    notifier.failing.add("down")
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        report = app.run_once()
        assert (report.outcomes[0].sent, report.outcomes[0].failed) == (1, 1)
        [down, up] = app.store.channel_statuses()
        assert (down.channel, down.retrying, down.sent) == ("down", 1, 0)
        assert down.last_error == "notify: down: refused (test)"
        assert (up.channel, up.sent) == ("up", 1)

        assert app.courier.deliver().sent == 0  # not due yet
        notifier.failing.clear()
        clock.advance(timedelta(minutes=2))
        assert app.courier.deliver().sent == 1
        [down, _] = app.store.channel_statuses()
        assert (down.retrying, down.sent, down.dead) == (0, 1, 0)
    assert [a.channel for a in notifier.sent] == ["up", "down"]


def test_retries_run_out_into_a_dead_letter(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    settings = _voa_atacms(settings_factory, httpserver, delivery={"backoff": ["1m"]})
    notifier.failing.add("hook")
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        clock.advance(timedelta(minutes=5))
        report = app.courier.deliver()
        [hook] = app.store.channel_statuses()
    assert (report.failed, report.dead) == (1, 1)
    assert (hook.pending, hook.retrying, hook.dead) == (0, 0, 1)


def test_a_304_to_a_first_request_without_validators_is_an_error_and_seeding_still_holds(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    """A server (or a cache in front of it) that answers 304 to a request that named no
    validators: taken as "unchanged", the first poll ended as a success with nothing
    stored, so the next 200 was no first poll and every old entry alerted, whatever
    ``poll.first_poll`` said. It is the feed's fetch error; the first real body seeds."""
    answers = [Response(status=304), Response(voa_feed(), content_type="application/rss+xml")]
    httpserver.expect_request("/voa.xml").respond_with_handler(lambda request: answers.pop(0))
    settings = _voa_atacms(settings_factory, httpserver, poll={"first_poll": "none"})
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        first = app.run_once()
        clock.advance(timedelta(hours=1))
        second = app.run_once()
    [refused] = first.outcomes
    assert refused.status == "error"
    assert refused.error == "fetch: 304 Not Modified to a request without validators"
    assert [(o.status, o.new) for o in second.outcomes] == [("ok", 1)]
    assert notifier.sent == [], "the first body was still the first poll: seeded, no alert"
