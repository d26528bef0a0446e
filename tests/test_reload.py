"""Hot reload in a real daemon process: an edited rule takes effect; a broken edit is
refused with the same path:line:col message as `monitor check`, and the old rules go on."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.samples import rss_feed, rss_item
from tests.conftest import Daemon, JsonSink

CONFIG = """
database: sqlite:///monitor.db
poll: {{interval: 1s, first_poll: all}}
channels: {{hook: "{hook}"}}
feeds: [{{name: News, url: "{feed}"}}]
rules:
  - name: missiles
    all: [ATACMS]
    notify: [hook]
{extra}"""
SWAP_RULE = """  - name: swaps
    any: ["prisoner exchange"]
    notify: [hook]
"""


@pytest.mark.slow
@pytest.mark.parametrize("trigger", ["file-watch", "sighup"])
def test_reload_picks_up_a_new_rule_and_refuses_a_broken_edit(
    trigger: str,
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    daemon_factory: Callable[[Path], Daemon],
) -> None:
    items: list[str] = []

    def feed(_request: Request) -> Response:
        return Response(
            rss_feed("News", "https://news.example/", list(items)), content_type="application/rss+xml"
        )

    def publish(title: str) -> None:
        items.insert(0, rss_item(title, f"https://news.example/{len(items)}", datetime.now(UTC), title))

    httpserver.expect_request("/feed.xml").respond_with_handler(feed)
    text = CONFIG.format(hook=json_sink.url(), feed=httpserver.url_for("/feed.xml"), extra="")
    path = write_config(text)
    publish("ATACMS strike reported")
    daemon = daemon_factory(path)
    json_sink.inbox.wait_for(1)

    def edit(new_text: str) -> None:
        path.write_text(new_text, encoding="utf-8")
        if trigger == "sighup":
            daemon.proc.send_signal(signal.SIGHUP)

    edit(text + SWAP_RULE)
    daemon.wait_for_line("reload status=ok feeds=1 rules=2 channels=1")
    publish("A prisoner exchange took place")
    [_, swap] = json_sink.inbox.wait_for(2)
    assert swap["title"] == "[swaps] A prisoner exchange took place"

    edit(text + SWAP_RULE + "    notfiy: [hook]\n")
    line = daemon.wait_for_line(f"reload {path}:")
    assert line.endswith(f"reload {path}:13:5: unknown key 'notfiy' (did you mean 'notify'?)")
    daemon.wait_for_line("reload status=refused problems=1")
    publish("Another ATACMS delivery and a prisoner exchange")
    posts = json_sink.inbox.wait_for(3)
    assert posts[2]["title"] == "[missiles, swaps] Another ATACMS delivery and a prisoner exchange"
    assert daemon.stop() == 0
