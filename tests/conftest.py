"""Shared fixtures: real loopback servers (HTTP feeds, SMTP, JSON webhook), real
databases (a SQLite file, the machine's PostgreSQL), a fixed clock and a recording
notifier for our own seam. Nothing of monitor is patched.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.config import Settings
from monitor.errors import NotifyError
from monitor.log import install_redactor
from monitor.models import Alert
from monitor.store import Store

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
WAIT = 30.0  # seconds a test waits on an event before failing (generous: CI machines can be loaded)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxies and no deployment overrides leak into a test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``cli.main`` configures logging; undo it so later tests log where pytest wants."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    apprise_logger = logging.getLogger("apprise")
    propagate = apprise_logger.propagate
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    apprise_logger.propagate = propagate
    install_redactor(lambda text: text)


@dataclass
class Clock:
    """A fixed clock that tests move by hand."""

    now: datetime = field(default_factory=lambda: datetime(2024, 5, 31, 18, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A real SQLite file in the test's own directory."""
    return f"sqlite:///{tmp_path / 'monitor.db'}"


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A database of this test session's own on the machine's PostgreSQL.

    MONITOR_TEST_DATABASE_URL names the server (and a database to connect to first);
    each session creates ``monitor_test_<pid>`` beside it and drops it at the end, so
    two test runs on one machine never empty each other's tables.
    """
    url = os.environ.get("MONITOR_TEST_DATABASE_URL")
    if not url:
        pytest.skip("MONITOR_TEST_DATABASE_URL is not set (.ci/run sets it when PostgreSQL answers)")
    base = make_url(url)
    name = f"monitor_test_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_server_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    _reset_postgres(pg_server_url)
    return pg_server_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def any_store(any_db_url: str) -> Iterator[Store]:
    """An open Store on a SQLite file, and on PostgreSQL."""
    store = Store.open(any_db_url)
    yield store
    store.close()


class Inbox:
    """Things that arrived at a loopback server, with a way to wait for them."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_until(self, condition: Callable[[], bool], timeout: float = WAIT) -> bool:
        """Block until ``condition()`` holds (checked on every arrival)."""
        with self._cond:
            return self._cond.wait_for(condition, timeout)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Any]:
        """Block until ``count`` items arrived; fail the test on timeout."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.items) >= count, timeout)
        assert ok, f"expected {count} deliveries, got {len(self.items)}"
        return list(self.items)


@dataclass
class SmtpSink:
    host: str
    port: int
    inbox: Inbox

    @property
    def messages(self) -> list[Message]:
        return list(self.inbox.items)

    def url(self, to: str = "ops@example.org") -> str:
        return f"mailto://{self.host}:{self.port}?from=monitor@example.org&to={to}&mode=insecure"


class _SmtpHandler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.inbox.add(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def start_smtp(port: int = 0) -> tuple[Controller, SmtpSink]:
    """An aiosmtpd server on 127.0.0.1 (any free port unless one is given)."""
    inbox = Inbox()
    controller = Controller(_SmtpHandler(inbox), hostname="127.0.0.1", port=port or free_port())
    controller.start()
    return controller, SmtpSink("127.0.0.1", controller.port, inbox)


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    controller, sink = start_smtp()
    try:
        yield sink
    finally:
        controller.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JsonSink:
    port: int
    inbox: Inbox
    status: list[int]

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    @property
    def posts(self) -> list[dict[str, Any]]:
        return list(self.inbox.items)


def start_json_sink(port: int = 0) -> tuple[ThreadingHTTPServer, JsonSink]:
    """A webhook receiver on 127.0.0.1; set ``status[0]`` to make it refuse posts."""
    inbox = Inbox()
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            code = status[0]
            if code == 200:
                inbox.add({**json.loads(body), "_headers": dict(self.headers)})
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, JsonSink(server.server_address[1], inbox, status)


@pytest.fixture
def json_sink_factory() -> Iterator[Callable[..., JsonSink]]:
    """Start as many webhook receivers as a test needs (optionally on a given port)."""
    servers: list[ThreadingHTTPServer] = []

    def start(port: int = 0) -> JsonSink:
        server, sink = start_json_sink(port)
        servers.append(server)
        return sink

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def json_sink(json_sink_factory: Callable[..., JsonSink]) -> JsonSink:
    return json_sink_factory()


class RecordingNotifier:
    """Our own Notifier seam, faked: records alerts; channels in ``failing`` refuse."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []
        self.failing: set[str] = set()
        self.batches: list[tuple[str, list[Alert], str]] = []

    def send(self, alert: Alert) -> None:
        if alert.channel in self.failing:
            raise NotifyError(f"notify: {alert.channel}: refused (test)")
        self.sent.append(alert)

    def send_batch(self, channel: str, alerts: Sequence[Alert], reason: str) -> None:
        if channel in self.failing:
            raise NotifyError(f"notify: {channel}: refused (test)")
        self.batches.append((channel, list(alerts), reason))


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def settings_factory(db_url: str) -> SettingsFactory:
    """Settings from keyword overrides, on the test's SQLite file by default."""

    def make(**overrides: Any) -> Settings:
        data: dict[str, Any] = {
            "database": db_url,
            "poll": {"first_poll": "all"},
            "channels": {"hook": "json://127.0.0.1:9/never"},
            "feeds": [],
            "rules": [],
        }
        data.update(overrides)
        return Settings.model_validate(data)

    return make


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to tmp_path/config.yaml and return the path."""

    def write(text_: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text_, encoding="utf-8")
        return path

    return write


class Daemon:
    """A real ``python -m monitor run`` process whose stderr lines we can wait for."""

    def __init__(self, config: Path, **env_overrides: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(env_overrides)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)],
            cwd=config.parent,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines = Inbox()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.add(line.rstrip("\n"))

    def wait_for_line(self, needle: str) -> str:
        def found() -> bool:
            return any(needle in line for line in self.lines.items)

        assert self.lines.wait_until(found, 20), f"no log line with {needle!r}; got:\n" + "\n".join(
            self.lines.items
        )
        return str(next(line for line in self.lines.items if needle in line))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._reader.join(5)
        return code


@pytest.fixture
def daemon_factory() -> Iterator[Callable[[Path], Daemon]]:
    started: list[Daemon] = []

    def start(config: Path) -> Daemon:
        started.append(Daemon(config))
        return started[-1]

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)
        d._reader.join(5)
        if d.proc.stderr is not None:
            d.proc.stderr.close()
