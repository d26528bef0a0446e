"""The command line, in-process through ``main()`` and as a real daemon subprocess."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from monitor.cli import main
from monitor.config import listen_address
from monitor.errors import ConfigError
from monitor.samples import voa_feed
from tests.conftest import Daemon, JsonSink, free_port

ROOT = Path(__file__).resolve().parent.parent
WriteConfig = Callable[[str], Path]


def _config(feed_url: str, hook: str, extra_feed: str = "") -> str:
    return f"""
database: sqlite:///monitor.db
poll:
  interval: 10m
  first_poll: all
channels:
  hook: "{hook}"
feeds:
  - name: VOA
    url: {feed_url}
{extra_feed}
rules:
  - name: prisoner exchange
    any: ["prisoner exchange"]
    notify: [hook]
"""


def test_run_once_polls_alerts_and_status_reports_it(
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: WriteConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    refused = f"  - name: Down\n    url: http://127.0.0.1:{free_port()}/feed.xml\n"
    path = write_config(_config(httpserver.url_for("/voa.xml"), json_sink.url(), refused))

    assert main(["run", "--once", "-c", str(path)]) == 0
    [post] = json_sink.inbox.wait_for(1)
    assert post["title"].startswith("[prisoner exchange] NATO leader")
    assert (path.parent / "monitor.db").exists()

    assert main(["status", "-c", str(path)]) == 0
    table = capsys.readouterr().out
    assert "VOA" in table and "Down" in table and "cannot connect" in table
    assert "hook" in table

    assert main(["status", "--json", "-c", str(path)]) == 0
    status = json.loads(capsys.readouterr().out)
    feeds = {f["name"]: f for f in status["feeds"]}
    assert feeds["VOA"]["articles"] == 1 and feeds["VOA"]["alerts"] == 1
    assert feeds["Down"]["error_count"] == 1
    assert status["channels"] == [
        {"channel": "hook", "pending": 0, "retrying": 0, "sent": 1, "dead": 0, "last_error": None}
    ]


def test_check_accepts_a_valid_file(write_config: WriteConfig, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(_config("https://example.org/feed.xml", "json://127.0.0.1:9/x"))
    assert main(["check", "-c", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: OK (1 feeds, 1 rules, 1 channels)"


def test_notify_test_sends_through_the_channel(json_sink: JsonSink, write_config: WriteConfig) -> None:
    path = write_config(_config("https://example.org/feed.xml", json_sink.url()))
    assert main(["notify-test", "hook", "-c", str(path)]) == 0
    [post] = json_sink.inbox.wait_for(1)
    assert post["title"] == "[notify-test] Test message from monitor"
    assert "«works»" in post["message"]


def test_notify_test_reports_failures_in_one_line(
    json_sink: JsonSink, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    json_sink.status[0] = 500
    path = write_config(_config("https://example.org/feed.xml", json_sink.url()))
    assert main(["notify-test", "hook", "-c", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("monitor: notify: hook (json://127.0.0.1:") and "\n" not in err
    assert main(["notify-test", "nope", "-c", str(path)]) == 2
    assert "no channel named 'nope' (channels: hook)" in capsys.readouterr().err


def test_demo_prints_the_alert_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "== [prisoner exchange, ATACMS] NATO leader supports alliance’s right to defend Ukraine" in out
    assert "«prisoner exchange»" in out
    assert "Done: 3 new articles, 1 matched, 1 alert(s) sent, status ok." in out


@pytest.mark.slow
def test_daemon_alerts_and_stops_cleanly_on_sigterm(
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: WriteConfig,
    daemon_factory: Callable[[Path], Daemon],
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    refused = f"  - name: Offline\n    url: http://127.0.0.1:{free_port()}/feed.xml\n"
    path = write_config(_config(httpserver.url_for("/voa.xml"), json_sink.url(), refused))
    daemon = daemon_factory(path)

    json_sink.inbox.wait_for(1)
    line = daemon.wait_for_line('poll feed="Offline" status=error')
    assert "cannot connect" in line and "retry_in=10m" in line
    daemon.wait_for_line('poll feed="VOA" status=ok new=1 matched=1 sent=1')
    assert daemon.stop() == 0
    daemon.wait_for_line("daemon stopped")
    assert len(json_sink.posts) == 1
    assert not any("Traceback" in line for line in daemon.lines.items)


@pytest.mark.slow
def test_a_second_instance_on_the_same_sqlite_file_refuses_to_start(
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: WriteConfig,
    daemon_factory: Callable[[Path], Daemon],
    capsys: pytest.CaptureFixture[str],
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    path = write_config(_config(httpserver.url_for("/voa.xml"), json_sink.url()))
    daemon = daemon_factory(path)
    daemon.wait_for_line("daemon started")
    assert main(["run", "--once", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        f"another monitor (pid {daemon.proc.pid}) is already running on {path.parent / 'monitor.db'}" in err
    )
    assert daemon.stop() == 0
    assert main(["run", "--once", "-c", str(path)]) == 0


# -- healthcheck: the daemon's health, not the file's ---------------------------------

BOMB = "l0: &l0 [lol]\n" + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
LISTEN = [
    # (config text, the address read)
    pytest.param('http:\n  listen: "127.0.0.1:8787"\n', "127.0.0.1:8787", id="block"),
    pytest.param("http: {listen: 127.0.0.1:8787}\n", "127.0.0.1:8787", id="flow"),
    pytest.param(
        "feeds: []\nhttp:\n  # status server\n  listen: '[::1]:9'  # ok\n", "[::1]:9", id="comments"
    ),
    pytest.param("a: &addr 0.0.0.0:9100\nhttp:\n  listen: *addr\n", "0.0.0.0:9100", id="alias"),
    pytest.param(
        "http:\n  listen: 127.0.0.1:1\nfeeds: [\n  unclosed\n", "127.0.0.1:1", id="yaml-breaks-after"
    ),
    pytest.param(
        "rules: [unclosed\nhttp:\n  listen: '127.0.0.1:2'  # c\n", "127.0.0.1:2", id="yaml-breaks-before"
    ),
    pytest.param('rules: [\nhttp: {listen: "127.0.0.1:3", x: 1}\n', "127.0.0.1:3", id="flow-line-scan"),
    pytest.param("fedes: []\nrules: [{name: r}]\nhttp: {listen: 127.0.0.1:4}\n", "127.0.0.1:4", id="invalid"),
    pytest.param(BOMB + "http: {listen: 127.0.0.1:5}\n", "127.0.0.1:5", id="alias-bomb"),
    pytest.param(
        "x: " + "[" * 5000 + "]" * 5000 + "\nhttp:\n  listen: 127.0.0.1:6\n", "127.0.0.1:6", id="deep"
    ),
    pytest.param("http: {listen: !!python/object:os.system 127.0.0.1:7}\n", "127.0.0.1:7", id="tag"),
    pytest.param("feeds: []\n", None, id="none"),
    pytest.param("http:\n  listen: null\n", None, id="null"),
    pytest.param("http:\n  listen:\n", None, id="empty"),
    pytest.param("http:\nfeeds: [\n", None, id="broken-without-listen"),
    pytest.param("\x00\x01 not yaml at all", None, id="not-yaml"),
]


@pytest.mark.parametrize(("text", "expected"), LISTEN)
def test_healthcheck_reads_only_the_listen_address(
    write_config: WriteConfig, text: str, expected: str | None
) -> None:
    assert listen_address(write_config(text), {}) == expected


def test_the_environment_wins_and_the_file_is_not_read(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert listen_address(missing, {"MONITOR_HTTP_LISTEN": " 0.0.0.0:9100 "}) == "0.0.0.0:9100"
    with pytest.raises(ConfigError, match="cannot read config"):
        listen_address(missing, {})
    with pytest.raises(ConfigError, match=r"MONITOR_HTTP_LISTEN \(from the environment\): must look like"):
        listen_address(missing, {"MONITOR_HTTP_LISTEN": "nonsense"})


def test_a_malformed_listen_address_is_reported_where_it_is(write_config: WriteConfig) -> None:
    path = write_config("feeds: []\nhttp:\n  listen: 'port 80'\n")
    with pytest.raises(ConfigError) as caught:
        listen_address(path, {})
    assert str(caught.value) == f"{path}:3:11: http.listen: must look like 127.0.0.1:8787, got 'port 80'"


def test_a_file_over_the_size_limit_is_read_only_so_far(write_config: WriteConfig) -> None:
    path = write_config("http: {listen: 127.0.0.1:8}\n" + "# padding\n" * 300_000)
    assert listen_address(path, {}) == "127.0.0.1:8"


def test_healthcheck_without_an_address_exits_1(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config("feeds: [\n")
    assert main(["healthcheck", "-c", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"monitor: {path}: healthcheck needs http.listen (e.g. 127.0.0.1:8787) or MONITOR_HTTP_LISTEN\n"
    )
    assert main(["healthcheck", "-c", str(path.parent / "nowhere.yaml")]) == 1
    assert "healthcheck: " in capsys.readouterr().err


@pytest.mark.slow
def test_healthcheck_reports_the_daemon_while_the_file_holds_a_broken_edit(
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: WriteConfig,
    daemon_factory: Callable[[Path], Daemon],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The daemon refused the edit and runs on its last good config: it is healthy, and the
    container must not be marked unhealthy (``healthcheck`` exited 2 here before)."""
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    port = free_port()
    good = (
        _config(httpserver.url_for("/voa.xml"), json_sink.url()) + f'http: {{listen: "127.0.0.1:{port}"}}\n'
    )
    path = write_config(good)
    daemon = daemon_factory(path)
    daemon.wait_for_line("http listening=127.0.0.1:")
    json_sink.inbox.wait_for(1)

    path.write_text(good + "  - name: broken\n    notfiy: [hook]\n" + BOMB, encoding="utf-8")
    daemon.wait_for_line("reload status=refused")
    assert main(["check", "-c", str(path)]) == 2
    capsys.readouterr()
    assert main(["healthcheck", "-c", str(path)]) == 0
    assert '"status": "ok"' in capsys.readouterr().out
    assert daemon.stop() == 0
    assert main(["healthcheck", "-c", str(path)]) == 1
    assert f"healthcheck: http://127.0.0.1:{port}/healthz:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("99999999999999999999999999", " (from 1 to 9223372036854775807)"),
        ("9223372036854775808", " (from 1 to 9223372036854775807)"),
        ("0", " (from 1 to 9223372036854775807)"),
        ("-1", " (from 1 to 9223372036854775807)"),
        ("abc", ""),
    ],
    ids=["26-digits", "one-past-the-largest-row-id", "zero", "negative", "not-a-number"],
)
def test_a_story_number_no_database_can_hold_is_a_usage_error(
    number: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 26-digit number raised OverflowError in the SQLite driver: a traceback."""
    with pytest.raises(SystemExit) as exited:
        main(["stories", "show", "--", number])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"argument ID: not a story number: {number!r}{reason}\n")


def test_healthcheck_reads_a_bounded_answer_without_escape_sequences(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another service on the daemon's port answers with an endless body full of
    terminal escapes: 64 KiB at most are read, and no control character is printed."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            with contextlib.suppress(OSError):
                while not stop.is_set():
                    conn.sendall(b"\x1b]0;owned\x07\x1b[2J ok " * 1000)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    path = write_config(f'http: {{listen: "127.0.0.1:{port}"}}\n')
    try:
        assert main(["healthcheck", "-c", str(path)]) == 0
    finally:
        stop.set()
        thread.join(10)
        listener.close()
    out = capsys.readouterr().out
    assert 0 < len(out.encode()) <= 64 * 1024 + 1
    assert not any(ord(c) < 0x20 and c != "\n" for c in out)
