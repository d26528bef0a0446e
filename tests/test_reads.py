"""Reads never wait for writers, and a database monitor cannot write to is one clear line.

SQLite allows one writer at a time; ``status``, ``/healthz`` and ``/metrics`` must answer
while a long write holds the lock (a prune, a big poll), so they read in DEFERRED
transactions, which WAL lets run beside a writer.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from monitor.app import App
from monitor.cli import main
from monitor.scheduler import Daemon
from monitor.store import Store
from tests.conftest import WAIT, RecordingNotifier, SettingsFactory

# Well under the store's busy timeout (10 s): a read that waited for the lock would miss it.
ANSWER_WITHIN = 5.0


@contextmanager
def _long_write(path: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock (BEGIN IMMEDIATE, uncommitted)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE feeds SET title = 'being rewritten'")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _answers(call: Callable[[], object]) -> object:
    """Run ``call`` in a thread; fail unless it returns within ANSWER_WITHIN seconds."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(ANSWER_WITHIN)
    assert result, f"did not answer within {ANSWER_WITHIN}s while another connection writes"
    return result[0]


def test_status_healthz_and_metrics_answer_during_a_long_write(
    settings_factory: SettingsFactory,
    notifier: RecordingNotifier,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_factory(feeds=[{"name": "F", "url": "https://news.example/feed"}])
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {settings.database}\nfeeds: [{{name: F, url: 'https://news.example/feed'}}]\n",
        encoding="utf-8",
    )
    with App.from_settings(settings, notifier=notifier, strict=True) as app:
        app.sync_feeds()
        daemon = Daemon(app)
        with _long_write(tmp_path / "monitor.db"):
            health = _answers(daemon.health)
            metrics = _answers(app.metrics.render)
            assert _answers(lambda: main(["status", "-c", str(config)])) == 0
    assert isinstance(health, tuple)
    ok, detail = health
    assert "database" not in " ".join(detail["problems"])
    assert b"monitor_feed_last_success_timestamp_seconds" in metrics  # type: ignore[operator]
    assert "F" in capsys.readouterr().out
    assert not ok, "the scheduler never ticked here: unhealthy for that, not for the database"


def _run_on_read_only(data: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run monitor with ``data`` read-only: a read-only bind mount in a mount namespace of
    its own when we are root (root writes through file modes), file modes otherwise."""
    command = [sys.executable, "-m", "monitor", *args]
    if os.geteuid() != 0:
        for name in os.listdir(data):
            os.chmod(data / name, 0o444)
        os.chmod(data, 0o555)
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=WAIT * 3, check=False)
        finally:
            os.chmod(data, 0o755)
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without unshare(1): no way to make a read-only volume")
    script = (
        f"mount --bind -o ro {shlex.quote(str(data))} {shlex.quote(str(data))} && exec {shlex.join(command)}"
    )
    return subprocess.run(
        [unshare, "-m", "sh", "-c", script], capture_output=True, text=True, timeout=WAIT * 3, check=False
    )


@pytest.mark.parametrize("command", [["run", "--once"], ["status"]], ids=["run", "status"])
def test_a_read_only_database_volume_is_one_clear_line(
    db_url: str, tmp_path: Path, command: list[str]
) -> None:
    Store.open(db_url).close()
    config = tmp_path / "config.yaml"
    config.write_text("database: sqlite:///monitor.db\nfeeds: []\n", encoding="utf-8")
    result = _run_on_read_only(tmp_path, [*command, "-c", str(config)])
    if command == ["status"] and result.returncode == 0:
        return  # reading a read-only database is fine where SQLite allows it
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("monitor:")]
    assert "read-only" in line or "readonly" in line, line
