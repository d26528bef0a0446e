"""Hot reload in a real daemon process: an edited rule takes effect; a broken edit is
refused with the same path:line:col message as `monitor check`, and the old rules go on;
any exception in a reload is a refused reload."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import App
from monitor.config import Settings
from monitor.log import install_redactor, redact_text
from monitor.samples import rss_feed, rss_item
from monitor.scheduler import Daemon as Scheduler
from tests.conftest import Daemon, JsonSink, SettingsFactory

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


@pytest.mark.slow
def test_a_reload_that_cannot_be_read_is_refused_and_the_old_rules_go_on(
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    daemon_factory: Callable[[Path], Daemon],
) -> None:
    """A query nested 5,000 deep once killed the daemon (RecursionError escaped the
    reload); an alias bomb would have eaten its memory. Both are refused at their place."""
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

    deep = "(" * 5000 + "swap" + ")" * 5000
    path.write_text(text + f"  - name: deep\n    query: '{deep}'\n    notify: [hook]\n", encoding="utf-8")
    line = daemon.wait_for_line(f"reload {path}:")
    assert line.endswith(
        f"reload {path}:11:45: query: the query nests deeper than 32 levels of parentheses and NOT; "
        "write it flatter"
    )
    daemon.wait_for_line("reload status=refused problems=1")

    bomb = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    path.write_text(text + "x: &l0 [lol]\n" + bomb, encoding="utf-8")
    line = daemon.wait_for_line("aliases expand")
    assert line.endswith(": YAML: aliases expand to more than 100,000 values; write the values out instead")
    assert daemon.lines.wait_until(lambda: sum("reload status=refused" in x for x in daemon.lines.items) == 2)

    publish("Another ATACMS delivery")
    posts = json_sink.inbox.wait_for(2)
    assert posts[1]["title"] == "[missiles] Another ATACMS delivery"
    assert not any("Traceback" in x for x in daemon.lines.items)
    assert daemon.stop() == 0


def test_any_exception_in_a_reload_is_a_refused_reload(
    settings_factory: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the loader raises, the running configuration stays; a bug's traceback is
    logged the first time it is seen, and every refusal is counted."""
    settings = settings_factory(
        rules=[{"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"]}],
        channels={"hook": "json://127.0.0.1:9/x"},
    )
    errors: list[Exception] = [RecursionError("maximum recursion depth exceeded"), KeyError("x")]

    def load() -> Settings:
        raise errors[0]

    with App.from_settings(settings) as app:
        daemon = Scheduler(app, load_config=load)
        caplog.set_level(logging.ERROR, logger="monitor.scheduler")
        assert daemon.reload() is False
        assert daemon.reload() is False
        errors.pop(0)
        assert daemon.reload() is False
        assert app.settings is settings
        metrics = app.metrics.render().decode()
    lines = [(r.getMessage(), r.exc_info is not None) for r in caplog.records]
    stays = "reload status=refused (the running configuration stays) internal error:"
    assert lines == [
        (f"{stays} RecursionError: maximum recursion depth exceeded", True),
        (
            f"{stays} RecursionError: maximum recursion depth exceeded (seen before; traceback logged once)",
            False,
        ),
        (f"{stays} KeyError: 'x'", True),
    ]
    assert daemon.reload_failures == 3
    assert 'monitor_config_reloads_total{result="failed"} 3.0' in metrics


def test_a_refused_reload_leaves_the_running_secrets_hidden_and_a_good_one_hides_both(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    """Loading a config installs its secrets' redactor at once (``cli.load``), before the
    daemon may refuse it: the running channels' tokens then went into log lines in the
    clear. A refused reload puts the running config's redactor back; an accepted one
    hides both configs' secrets (the old one's polls may still be finishing)."""
    running = settings_factory(channels={"hook": "json://alerts:RunningS3cret@127.0.0.1:9/x"})
    moved = settings_factory(
        database=f"sqlite:///{tmp_path / 'other.db'}",
        channels={"hook": "json://alerts:NewS3cret@127.0.0.1:9/x"},
    )
    edited = settings_factory(channels={"hook": "json://alerts:EditedS3cret@127.0.0.1:9/x"})
    files = [moved, edited]

    def load() -> Settings:  # what cli.load does: validate, then hide that file's secrets
        settings = files.pop(0)
        install_redactor(settings.redactor())
        return settings

    install_redactor(running.redactor())
    with App.from_settings(running) as app:
        daemon = Scheduler(app, load_config=load)
        assert daemon.reload() is False  # a database change waits for a restart: refused
        after_refusal = redact_text("the hook answered 401 to RunningS3cret")
        assert daemon.reload() is True
        after_reload = redact_text("RunningS3cret and EditedS3cret")
    assert "RunningS3cret" not in after_refusal
    assert "RunningS3cret" not in after_reload and "EditedS3cret" not in after_reload
