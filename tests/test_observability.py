"""A running daemon answers /healthz and /metrics over real HTTP; metrics move with polls;
`monitor healthcheck` tells a container probe the truth; secrets never leak."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from monitor.cli import main
from monitor.config import load_settings
from monitor.samples import voa_feed
from tests.conftest import Daemon, JsonSink, free_port


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.slow
def test_healthz_and_metrics_from_a_running_daemon(
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    daemon_factory: Callable[[Path], Daemon],
    capsys: pytest.CaptureFixture[str],
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    port = free_port()
    path = write_config(
        f"""
database: sqlite:///monitor.db
http: {{listen: "127.0.0.1:{port}"}}
poll: {{interval: 1s, first_poll: all}}
channels: {{hook: "{json_sink.url()}"}}
feeds: [{{name: VOA, url: "{httpserver.url_for("/voa.xml")}"}}]
rules: [{{name: ATACMS, all: [ATACMS], notify: [hook]}}]
"""
    )
    daemon = daemon_factory(path)
    json_sink.inbox.wait_for(1)
    daemon.wait_for_line("http listening=127.0.0.1:")
    base = f"http://127.0.0.1:{port}"

    health = httpx.get(f"{base}/healthz", trust_env=False)
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["problems"] == []

    first = _samples(httpx.get(f"{base}/metrics", trust_env=False).text)
    assert first[("monitor_polls_total", (("status", "ok"),))] >= 1
    assert first[("monitor_articles_stored_total", ())] == 1
    assert first[("monitor_matches_total", (("rule", "ATACMS"),))] == 1
    assert first[("monitor_delivery_attempts_total", (("channel", "hook"), ("result", "sent")))] == 1
    assert first[("monitor_deliveries", (("channel", "hook"), ("state", "sent")))] == 1
    assert first[("monitor_dead_letters", (("channel", "hook"),))] == 0
    assert ("monitor_feed_last_success_timestamp_seconds", (("feed", "VOA"),)) in first
    assert first[("monitor_fetch_seconds_count", ())] >= 1

    polls_before = sum(v for (name, _), v in first.items() if name == "monitor_polls_total")

    def poll_lines() -> int:
        return sum(1 for line in daemon.lines.items if 'poll feed="VOA" status=' in line)

    seen = poll_lines()
    assert daemon.lines.wait_until(lambda: poll_lines() > seen + 1), "the daemon kept polling"
    later = _samples(httpx.get(f"{base}/metrics", trust_env=False).text)
    assert later[("monitor_polls_total", (("status", "not_modified"),))] >= 1, "unchanged body: not parsed"
    assert sum(v for (name, _), v in later.items() if name == "monitor_polls_total") > polls_before

    assert main(["healthcheck", "-c", str(path)]) == 0
    assert '"status": "ok"' in capsys.readouterr().out
    assert httpx.get(f"{base}/nope", trust_env=False).status_code == 404
    assert daemon.stop() == 0
    assert main(["healthcheck", "-c", str(path)]) == 1
    assert "healthcheck: http://127.0.0.1:" in capsys.readouterr().err


def test_healthcheck_needs_the_status_server(
    write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config("feeds: []\n")
    assert main(["healthcheck", "-c", str(path)]) == 1
    assert "healthcheck needs http.listen" in capsys.readouterr().err


def test_listen_address_can_come_from_the_environment(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config("feeds: []\n")
    monkeypatch.setenv("MONITOR_HTTP_LISTEN", "0.0.0.0:9100")
    assert load_settings(path).http.listen == "0.0.0.0:9100"
    monkeypatch.setenv("MONITOR_HTTP_LISTEN", "nonsense")
    assert main(["check", "-c", str(path)]) == 2
    assert (
        "MONITOR_HTTP_LISTEN (from the environment): must look like 127.0.0.1:8787" in capsys.readouterr().err
    )
