"""Alerts are never lost and never sent twice: retries against real servers that come
and go, dead letters, per-target retries, digests, hourly limits, templates, identity."""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select, update

from monitor.app import App
from monitor.cli import main
from monitor.models import Entry, Match, Snippet
from monitor.samples import rss_feed, rss_item
from monitor.store import PollResult
from monitor.store.tables import DELIVERIES, MATCHES
from tests.conftest import (
    WAIT,
    Clock,
    Daemon,
    Inbox,
    JsonSink,
    RecordingNotifier,
    SettingsFactory,
    free_port,
    start_smtp,
)

JsonSinkFactory = Callable[..., JsonSink]


def _items(clock: Clock, count: int, word: str = "ATACMS") -> list[str]:
    return [
        rss_item(
            f"Story {i} about {word}",
            f"https://news.example/story-{i}",
            clock.now - timedelta(minutes=10 * (count - i)),
            f"Officials discussed {word} deliveries, report {i}.",
        )
        for i in range(count)
    ]


def _serve(httpserver: HTTPServer, items: list[str]) -> str:
    httpserver.clear()
    httpserver.expect_request("/feed.xml").respond_with_data(rss_feed("News", "https://news.example/", items))
    return httpserver.url_for("/feed.xml")


def _rule(*channels: str) -> list[dict[str, Any]]:
    """One alert per article: these tests count messages, and their articles look alike."""
    return [{"name": "ATACMS", "all": ["ATACMS"], "notify": list(channels), "stories": "each"}]


def test_smtp_down_then_up_delivers_exactly_once(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock
) -> None:
    port = free_port()
    url = f"mailto://127.0.0.1:{port}?from=monitor@example.org&to=ops@example.org&mode=insecure"
    settings = settings_factory(
        channels={"mail": url},
        delivery={"backoff": ["1m", "5m"]},
        feeds=[{"name": "News", "url": _serve(httpserver, _items(clock, 1))}],
        rules=_rule("mail"),
    )
    with App.from_settings(settings, clock=clock, strict=True) as app:
        first = app.run_once()
        assert first.outcomes[0].failed == 1
        [status] = app.store.channel_statuses()
        assert (status.retrying, status.sent) == (1, 0)
        assert status.last_error is not None and "mail (mailto://127.0.0.1" in status.last_error

        controller, smtp = start_smtp(port)
        try:
            assert app.courier.deliver().sent == 0  # backoff not over yet
            clock.advance(timedelta(minutes=2))
            assert app.courier.deliver().sent == 1
            clock.advance(timedelta(hours=3))
            assert app.courier.deliver().sent == 0
            [mail] = smtp.inbox.wait_for(1)
        finally:
            controller.stop()
        [status] = app.store.channel_statuses()
    assert (status.retrying, status.sent, status.dead) == (0, 1, 0)
    assert mail["Subject"] == "[ATACMS] Story 0 about ATACMS"
    assert len(mail["X-Monitor-Delivery-Id"]) == 32


def test_a_dead_channel_does_not_hold_back_another(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock
) -> None:
    settings = settings_factory(
        channels={"down": f"json://127.0.0.1:{free_port()}/x", "up": json_sink.url()},
        delivery={"backoff": ["1m", "2m"]},
        feeds=[{"name": "News", "url": _serve(httpserver, _items(clock, 1))}],
        rules=_rule("down", "up"),
    )
    with App.from_settings(settings, clock=clock, strict=True) as app:
        app.run_once()
        assert len(json_sink.inbox.wait_for(1)) == 1
        for _ in range(2):
            clock.advance(timedelta(minutes=5))
            app.courier.deliver()
        statuses = {s.channel: s for s in app.store.channel_statuses()}
    assert (statuses["down"].dead, statuses["down"].retrying) == (1, 0)
    assert statuses["up"].sent == 1
    assert len(json_sink.posts) == 1


def test_only_the_failed_target_of_a_channel_is_retried(
    httpserver: HTTPServer,
    settings_factory: SettingsFactory,
    json_sink_factory: JsonSinkFactory,
    clock: Clock,
) -> None:
    good, flaky = json_sink_factory(), json_sink_factory()
    flaky.status[0] = 503
    settings = settings_factory(
        channels={"both": [good.url("/a"), flaky.url("/b")]},
        feeds=[{"name": "News", "url": _serve(httpserver, _items(clock, 1))}],
        rules=_rule("both"),
    )
    with App.from_settings(settings, clock=clock, strict=True) as app:
        assert app.run_once().outcomes[0].failed == 1
        flaky.status[0] = 200
        clock.advance(timedelta(minutes=2))
        assert app.courier.deliver().sent == 1
    [first] = good.inbox.wait_for(1)
    [second] = flaky.inbox.wait_for(1)
    assert len(good.posts) == 1
    assert first["monitor_id"] == second["monitor_id"]
    assert first["_headers"]["X-Monitor-Delivery-Id"] == first["monitor_id"]


def test_digest_collects_matches_until_the_cron_time(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock
) -> None:
    settings = settings_factory(
        channels={
            "morning": {"urls": [json_sink.url()], "digest": "0 8 * * *", "timezone": "Europe/Kyiv"},
        },
        feeds=[{"name": "News", "url": _serve(httpserver, _items(clock, 3))}],
        rules=_rule("morning"),
    )
    with App.from_settings(settings, clock=clock, strict=True) as app:
        report = app.run_once()
        assert (report.outcomes[0].matched, report.outcomes[0].sent) == (3, 0)
        [status] = app.store.channel_statuses()
        assert status.pending == 3
        clock.now = datetime(2024, 6, 1, 4, 59, tzinfo=UTC)  # 07:59 in Kyiv
        assert app.courier.deliver().sent == 0
        clock.now = datetime(2024, 6, 1, 5, 0, tzinfo=UTC)
        assert app.courier.deliver().sent == 3
        assert app.courier.deliver().sent == 0
    [post] = json_sink.inbox.wait_for(1)
    assert post["title"] == "Digest: 3 alerts"
    lines = post["message"].splitlines()
    assert lines[0] == "ATACMS (3)"
    stories = [line for line in lines if line.startswith("- ")]
    assert [s.split(" about")[0] for s in stories] == ["- Story 2", "- Story 1", "- Story 0"]


def test_hourly_limit_folds_the_rest_into_one_summary(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock
) -> None:
    settings = settings_factory(
        channels={"limited": {"urls": [json_sink.url()], "max_per_hour": 2}},
        feeds=[{"name": "News", "url": _serve(httpserver, _items(clock, 5))}],
        rules=_rule("limited"),
    )
    with App.from_settings(settings, clock=clock, strict=True) as app:
        app.run_once()
        assert len(json_sink.inbox.wait_for(2)) == 2
        [status] = app.store.channel_statuses()
        assert (status.sent, status.pending) == (2, 3)
        clock.advance(timedelta(minutes=59))
        assert app.courier.deliver().sent == 0
        clock.advance(timedelta(minutes=1))
        assert app.courier.deliver().sent == 3
    posts = json_sink.inbox.wait_for(3)
    assert len(posts) == 3
    assert posts[2]["title"] == "3 more alerts held back by the hourly limit"
    assert posts[2]["message"].count("\n- ") == 3


def test_templates_fill_escaped_fields(
    httpserver: HTTPServer, settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock
) -> None:
    settings = settings_factory(
        channels={
            "custom": {
                "urls": [json_sink.url() + "?format=html"],
                "template": {
                    "title": "{feed}: {title}",
                    "body": "<p>{rules}</p><p>{snippet}</p><a href='{link}'>x</a>",
                },
            }
        },
        feeds=[{"name": "News <b>", "url": _serve(httpserver, _items(clock, 1, "ATACMS & <i>co</i>"))}],
        rules=_rule("custom"),
    )
    with App.from_settings(settings, clock=clock, strict=True) as app:
        app.run_once()
    [post] = json_sink.inbox.wait_for(1)
    assert post["title"] == "News <b>: Story 0 about ATACMS & co"
    assert post["message"].startswith("<p>ATACMS</p><p>Officials discussed <mark>ATACMS</mark> &amp; co")
    assert "href='https://news.example/story-0'" in post["message"]


def test_deliveries_retry_sends_pending_and_dead_now(
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    json_sink.status[0] = 500
    items = [rss_item("ATACMS story", "https://news.example/1", datetime.now(UTC), "ATACMS")]
    path = write_config(
        f"""
database: sqlite:///monitor.db
delivery: {{backoff: [1h]}}
channels: {{hook: "{json_sink.url()}"}}
feeds: [{{name: News, url: "{_serve(httpserver, items)}"}}]
rules: [{{name: ATACMS, all: [ATACMS], notify: [hook], stories: each}}]
"""
    )
    assert main(["run", "--once", "-c", str(path)]) == 0
    assert main(["deliveries", "retry", "-c", str(path)]) == 1  # still failing: now dead
    out = capsys.readouterr().out
    assert "dead  hook  ATACMS story: notify: hook (json://127.0.0.1" in out
    json_sink.status[0] = 200
    assert main(["deliveries", "retry", "--channel", "hook", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["sent  hook  ATACMS story", "1 sent, 0 failed"]
    assert len(json_sink.inbox.wait_for(1)) == 1
    assert main(["deliveries", "retry", "--channel", "nope", "-c", str(path)]) == 2


def test_recording_notifier_batches_are_used_for_digests(
    httpserver: HTTPServer, settings_factory: SettingsFactory, notifier: RecordingNotifier, clock: Clock
) -> None:
    settings = settings_factory(
        channels={"d": {"urls": ["json://127.0.0.1:9/x"], "digest": "*/5 * * * *"}},
        feeds=[{"name": "News", "url": _serve(httpserver, _items(clock, 2))}],
        rules=_rule("d"),
    )
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        clock.advance(timedelta(minutes=5))
        app.courier.deliver()
    [(channel, alerts, reason)] = notifier.batches
    assert (channel, len(alerts), reason) == ("d", 2, "digest")
    assert notifier.sent == []


class _StallingSink:
    """A webhook that holds the first POST open until released, then answers normally."""

    def __init__(self) -> None:
        self.posts = Inbox()
        self.release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                first = not sink.posts.items
                sink.posts.add(body)
                if first:
                    sink.release.wait(WAIT)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_kill_9_mid_delivery_loses_nothing_and_duplicates_at_most_the_one_in_flight(
    httpserver: HTTPServer,
    write_config: Callable[[str], Path],
    daemon_factory: Callable[[Path], Daemon],
) -> None:
    now = datetime.now(UTC)
    items = [
        rss_item(f"ATACMS story {i}", f"https://news.example/{i}", now - timedelta(minutes=i), "ATACMS")
        for i in range(3)
    ]
    sink = _StallingSink()
    try:
        path = write_config(
            f"""
database: sqlite:///monitor.db
channels: {{hook: "{sink.url}"}}
feeds: [{{name: News, url: "{_serve(httpserver, items)}"}}]
rules: [{{name: ATACMS, all: [ATACMS], notify: [hook], stories: each}}]
"""
        )
        first = daemon_factory(path)
        [in_flight] = sink.posts.wait_for(1)  # articles are committed; the first send hangs
        first.proc.kill()
        assert first.proc.wait(WAIT) == -signal.SIGKILL
        sink.release.set()

        second = daemon_factory(path)
        posts = sink.posts.wait_for(4)
        second.wait_for_line("status=sent")
        assert second.stop() == 0
    finally:
        sink.close()

    ids = Counter(p["monitor_id"] for p in posts)
    assert len(ids) == 3, "every alert was delivered"
    assert [key for key, n in ids.items() if n > 1] == [in_flight["monitor_id"]]
    assert sum(ids.values()) == 4


@pytest.mark.parametrize(
    "damage", ["{cut off", "[[1, 2, 3]]", "[" * 100_000 + "]" * 100_000, "null", '{"a": 1}']
)
def test_an_outbox_row_that_cannot_be_read_does_not_hold_back_the_messages_claimed_with_it(
    settings_factory: SettingsFactory, json_sink: JsonSink, clock: Clock, damage: str
) -> None:
    """A deliveries row (or its match) edited by hand or written by a broken version:
    its JSON columns read back as empty, and every message of the claim goes out."""
    settings = settings_factory(
        channels={"up": json_sink.url()}, feeds=[{"name": "News", "url": "https://news.example/f"}]
    )
    with App.from_settings(settings, clock=clock, strict=True) as app:
        app.sync_feeds()
        [feed] = app.store.feeds()
        entries = [
            Entry(
                f"k{i}",
                f"Story {i} about ATACMS",
                f"https://news.example/{i}",
                None,
                clock.now,
                "",
                "ATACMS",
                "",
                "",
            )
            for i in range(3)
        ]
        matches = {
            e.key: [Match("ATACMS", "title", ("ATACMS",), Snippet(e.title, ((9, 15),)))] for e in entries
        }
        saved = app.store.save_poll(
            feed.id, PollResult(None, None, None), entries, matches, {"ATACMS": ["up"]}, clock.now, clock.now
        )
        first, second, _ = saved.delivery_ids
        with app.store.engine.begin() as conn:
            conn.execute(
                update(DELIVERIES).where(DELIVERIES.c.id == first).values(rules=damage, done_targets=damage)
            )
            article = select(DELIVERIES.c.article_id).where(DELIVERIES.c.id == second).scalar_subquery()
            conn.execute(update(MATCHES).where(MATCHES.c.article_id == article).values(highlights=damage))
        report = app.courier.deliver()
        assert (report.sent, report.failed) == (3, 0)
        assert len(json_sink.inbox.wait_for(3)) == 3
        assert {s.channel: s.sent for s in app.store.channel_statuses()} == {"up": 3}
