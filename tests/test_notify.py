"""Rendering per format (escaping hostile feed text) and Apprise plugin handling."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from monitor.config import Settings, TemplateSpec
from monitor.errors import NotifyError
from monitor.models import Alert, Snippet
from monitor.notify import AppriseNotifier, check_url, plugin_format, redact, render
from monitor.notify.render import Format, Rendered, format_time, md_escape, render_batch, safe_link, subject
from monitor.notify.targets import instantiate
from tests.conftest import JsonSink, SmtpSink

KYIV = ZoneInfo("Europe/Kyiv")
HOSTILE = '<script>alert(1)</script> <!channel> <http://evil.example|click> *b* _i_ [x](http://e) & "q"'


def _alert(title: str = HOSTILE, link: str | None = "https://example.org/a?b=1&c=2", **kw: object) -> Alert:
    text = "before prisoner exchange <b>after</b>"
    values: dict[str, object] = {
        "delivery_id": 7,
        "channel": "c",
        "feed": "Feed <i>x</i>",
        "title": title,
        "link": link,
        "published": datetime(2024, 5, 31, 17, 42, tzinfo=UTC),
        "rules": ("prisoner exchange", "ATACMS"),
        "snippet": Snippet(text=text, highlights=((7, 24),)),
    }
    values.update(kw)
    return Alert(**values)  # type: ignore[arg-type]


def test_html_escapes_everything_from_the_feed() -> None:
    body = render(_alert(), "html", KYIV).body
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "&lt;!channel&gt;" in body
    assert "Feed &lt;i&gt;x&lt;/i&gt;" in body
    assert '<mark style="background:#ffe066">prisoner exchange</mark> &lt;b&gt;after&lt;/b&gt;' in body
    assert 'href="https://example.org/a?b=1&amp;c=2"' in body
    assert "2024-05-31 20:42 EEST" in body


def test_markdown_escapes_commonmark_and_slack_controls() -> None:
    body = render(_alert(), "markdown", KYIV).body
    assert "<" not in body.replace("\\<", "")
    assert "\\*b\\*" in body and "\\_i\\_" in body and "\\[x\\]\\(http" in body
    assert body.startswith("**[")
    assert "**prisoner exchange**" in body


def test_text_marks_highlights_and_keeps_one_line_title() -> None:
    body = render(_alert(title="Line one\nBcc: x@example.org"), "text", KYIV).body
    first = body.splitlines()[0]
    assert first == "Line one Bcc: x@example.org"
    assert "before «prisoner exchange» <b>after</b>" in body
    assert body.rstrip().endswith("https://example.org/a?b=1&c=2")


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://example.org/a b", "https://example.org/a%20b"),
        ("javascript:alert(1)", None),
        ("data:text/html,x", None),
        ("http://example.org/<x>|y", "http://example.org/%3Cx%3E%7Cy"),
        (None, None),
        ("http://[::1", None),
    ],
    ids=["space", "javascript", "data", "brackets", "none", "invalid"],
)
def test_safe_link(link: str | None, expected: str | None) -> None:
    assert safe_link(link) == expected


def test_subject_is_one_bounded_line() -> None:
    title = subject(_alert(title="x\r\n" * 200))
    assert "\n" not in title and "\r" not in title and len(title) <= 200


def test_md_escape_round_trip_characters() -> None:
    assert md_escape("a*b_c<d>e") == "a\\*b\\_c\\<d\\>e"


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        ("mailto://127.0.0.1:25?from=monitor@example.org&to=ops@example.org", "html"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#c", "markdown"),
        ("json://127.0.0.1:9/x", "text"),
        ("json://127.0.0.1:9/x?format=html", "html"),
        ("console://", "text"),
    ],
    ids=["email", "slack", "json", "json-override", "console"],
)
def test_each_plugin_gets_its_preferred_format(url: str, fmt: str) -> None:
    assert plugin_format(instantiate(url)) == fmt


def test_check_url_and_redaction_never_show_secrets() -> None:
    assert check_url("json://127.0.0.1:9/x") is None
    reason = check_url("notaservice://user:hunter2@host")
    assert reason is not None and "hunter2" not in reason
    assert "hunter2" not in redact("mailtos://me:hunter2@smtp.example.org?to=a@example.org")
    assert "hunter2" not in redact("slack://hunter2")


def test_apprise_notifier_sends_email_and_webhook(smtp_server: SmtpSink, json_sink: JsonSink) -> None:
    settings = Settings.model_validate(
        {"channels": {"mail": smtp_server.url(), "hook": json_sink.url()}, "timezone": "Europe/Kyiv"}
    )
    notifier = AppriseNotifier(settings)
    notifier.send(_alert(channel="mail"))
    notifier.send(_alert(channel="hook"))
    [mail] = smtp_server.inbox.wait_for(1)
    [post] = json_sink.inbox.wait_for(1)
    assert mail["To"] == "ops@example.org"
    assert post["type"] == "info" and "«prisoner exchange»" in post["message"]


def test_a_refused_send_raises_notify_error_with_the_reason(json_sink: JsonSink) -> None:
    json_sink.status[0] = 503
    notifier = AppriseNotifier(Settings.model_validate({"channels": {"hook": json_sink.url()}}))
    with pytest.raises(NotifyError, match=r"notify: hook \(json://127\.0\.0\.1:\d+/hook.*\): .*503"):
        notifier.send(_alert(channel="hook"))


def test_an_unknown_channel_is_an_error() -> None:
    notifier = AppriseNotifier(Settings.model_validate({}))
    with pytest.raises(NotifyError, match="channel 'gone' is not configured"):
        notifier.send(_alert(channel="gone"))


# --- any Alert renders (issue 10: one message's OverflowError held back a whole batch) -

FORMATS: tuple[Format, ...] = ("text", "html", "markdown")
WEST, EAST = ZoneInfo("America/Los_Angeles"), ZoneInfo("Pacific/Kiritimati")
OUR_HTML = re.compile(r"</?(?:h2|h3|p|a|b|br|blockquote|mark|ul|li|span)(?: [a-z]+=\"[^\"<>]*\")*>")


def _every_rendering(alert: Alert, tz: ZoneInfo) -> list[Rendered]:
    template = TemplateSpec(title="{rules}: {title}", body="{title} {feed} {link} {published} {snippet}")
    out = []
    for fmt in FORMATS:
        out += [
            render(alert, fmt, tz),
            render(alert, fmt, tz, template),
            render_batch([alert, alert], fmt, tz, "x"),
        ]
    return out


def assert_escaped(rendered: Rendered) -> None:
    """What every channel relies on, whatever the alert held."""
    for text in (rendered.title, rendered.body):
        text.encode("utf-8")  # no lone surrogate
        assert not any(ord(c) < 32 and c != "\n" for c in text), repr(text[:200])
    assert "\n" not in rendered.title and len(rendered.title) <= 200
    if rendered.format == "html":
        assert "<" not in OUR_HTML.sub("", rendered.body), rendered.body[:500]
        assert all(
            href.startswith(("http://", "https://")) for href in re.findall(r'href="([^"]*)"', rendered.body)
        )
    if rendered.format == "markdown":
        assert "<" not in rendered.body.replace("\\<", "")


@pytest.mark.parametrize(
    ("when", "tz", "shown"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), WEST, "0001-01-01 00:00 UTC"),
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), EAST, "9999-12-31 23:59 UTC"),
        (datetime(1, 1, 1, 5, tzinfo=UTC), WEST, "0001-01-01 05:00 UTC"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), WEST, "0001-01-01 00:00 UTC"),
        (datetime(1, 1, 2, tzinfo=UTC), WEST, "0001-01-01 16:07 LMT"),
        (datetime(2024, 5, 31, 17, 42), KYIV, "2024-05-31 20:42 EEST"),
    ],
    ids=[
        "year-1-west",
        "year-9999-east",
        "year-1-morning-west",
        "year-1-east-offset",
        "year-1-day-2",
        "naive-is-utc",
    ],
)
def test_a_time_the_channel_zone_cannot_show_is_shown_in_utc(
    when: datetime, tz: ZoneInfo, shown: str
) -> None:
    """A year-1 date rendered for a channel west of UTC raised OverflowError."""
    assert format_time(when, tz) == shown
    for rendered in _every_rendering(_alert(published=when), tz):
        assert_escaped(rendered)


HOSTILE_ALERTS: dict[str, dict[str, Any]] = {
    "surrogates": {"title": "a\ud800b", "feed": "f\udfff", "link": "https://x.example/\ud800"},
    "controls": {"title": "a\x00b\x1b[31m\x7f", "feed": "f\x00", "rules": ("r\x00\n1",)},
    "huge": {"title": "T" * 2_000_000, "feed": "F" * 100_000, "link": "https://x.example/" + "a" * 100_000},
    "markup-in-rules": {"rules": ("<script>", "*b*", "[x](javascript:1)")},
    "snippet-controls": {"snippet": Snippet("a\x00b\ud800c exchange", ((7, 15),))},
    "spans-out-of-range": {"snippet": Snippet("prisoner exchange", ((-5, 3), (10, 99), (50, 60), (8, 2)))},
    "spans-overlapping": {"snippet": Snippet("prisoner exchange", ((0, 8), (4, 12), (4, 12), (9, 17)))},
    "huge-snippet": {"snippet": Snippet("x" * 1_000_000, ((0, 10), (999_990, 1_000_000)))},
    "no-title-no-link": {"title": "", "link": None, "rules": ()},
}


@pytest.mark.parametrize("changes", list(HOSTILE_ALERTS.values()), ids=list(HOSTILE_ALERTS))
def test_a_hostile_alert_renders_in_every_format(changes: dict[str, Any]) -> None:
    for tz in (KYIV, WEST, EAST):
        for rendered in _every_rendering(_alert(**changes), tz):
            assert_escaped(rendered)


def test_overlapping_spans_are_merged_not_repeated() -> None:
    alert = _alert(snippet=Snippet("prisoner exchange", ((0, 8), (4, 12), (9, 17))))
    assert "«prisoner exchange»" in render(alert, "text", KYIV).body


_texts = st.text(st.characters(codec=None), max_size=300)
_alerts = st.builds(
    _alert,
    title=_texts,
    link=st.one_of(st.none(), _texts, _texts.map(lambda t: "https://x.example/" + t)),
    feed=_texts,
    published=st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-23, minutes=-59)), KYIV])
    ),
    rules=st.lists(_texts, max_size=4).map(tuple),
    snippet=st.builds(
        Snippet,
        _texts,
        st.lists(st.tuples(st.integers(-10, 400), st.integers(-10, 400)), max_size=6).map(tuple),
    ),
)


@settings(max_examples=200, deadline=None)
@given(alert=_alerts, tz=st.sampled_from([KYIV, WEST, EAST, ZoneInfo("UTC"), ZoneInfo("Asia/Kathmandu")]))
def test_any_alert_renders_in_every_format_and_zone(alert: Alert, tz: ZoneInfo) -> None:
    for rendered in _every_rendering(alert, tz):
        assert_escaped(rendered)


def test_a_service_without_a_title_field_gets_the_title_escaped_into_its_body(httpserver: HTTPServer) -> None:
    """Apprise puts the title into the body, as a heading in the body's format and as
    written, for services with no title field of their own (``title_maxlen`` 0: Google
    Chat, Rocket.Chat, Webex, Evolution). A feed title's ``[x](https://evil.example)``
    then became a live link in the message; its ``*`` bold. Real Apprise (its Evolution
    plugin, a self-hosted WhatsApp gateway) posting to a loopback server."""
    httpserver.expect_request("/message/sendText/inst").respond_with_json({})
    url = f"evolution://key123@127.0.0.1:{httpserver.port}/inst/15551234567"
    [plugin] = [instantiate(url)]
    assert plugin is not None and plugin.title_maxlen == 0 and plugin_format(plugin) == "markdown"
    notifier = AppriseNotifier(Settings.model_validate({"channels": {"c": url}}))
    notifier.send(_alert(title="Read [this](https://evil.example/phish) *now*"))
    [(request, _)] = httpserver.log
    heading = request.get_json()["text"].splitlines()[0]
    assert "this (https://evil.example/phish)" not in heading, "read as a link"
    assert "Read [this](https://evil.example/phish) *now*" in heading, "shown as the feed wrote it"
