"""Rendering per format (escaping hostile feed text) and Apprise plugin handling."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.config import Settings
from monitor.errors import NotifyError
from monitor.models import Alert, Snippet
from monitor.notify import AppriseNotifier, check_url, plugin_format, redact, render
from monitor.notify.notifier import IDENTITY_HEADER
from monitor.notify.render import md_escape, safe_link, subject
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


def test_concurrent_sends_through_one_channel_each_carry_their_own_message_key(json_sink: JsonSink) -> None:
    """Poll threads deliver through the same channel at once; the key stamped on the
    shared plugin must be the one of the message it goes out with (a receiver that
    drops repeats by key would otherwise drop a real alert)."""
    settings = Settings.model_validate({"channels": {"hook": json_sink.url()}})
    notifier = AppriseNotifier(settings)
    alerts = [_alert(title=f"story {n}", channel="hook", message_key=f"key-{n}") for n in range(160)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(notifier.send, alerts))
    posts = json_sink.inbox.wait_for(len(alerts))
    assert {(p["title"].rsplit(" ", 1)[1], p["monitor_id"].removeprefix("key-")) for p in posts} == {
        (str(n), str(n)) for n in range(160)
    }
    assert {p["_headers"][IDENTITY_HEADER] for p in posts} == {f"key-{n}" for n in range(160)}
