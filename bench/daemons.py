"""Real ``monitor run`` processes for the cycle benchmark: memory, alert latency, and
one against two instances on PostgreSQL.

Each daemon is ``monitor run -c config.yaml`` (the console script, as deployed; the
config is written as JSON, which YAML reads), its log going to a file beside the config. Progress is read from
the database itself (how many feeds have been polled), never from the log.

Memory is read from ``/proc``: ``VmHWM`` (peak resident set) of the daemon process,
and of its descendants (the parse workers and the fork server they come from), with
their ``Pss`` (resident memory with shared pages split between the processes sharing
them, so the sum is not counted twice).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.feeds_server import ROOT, FeedServer, clean_env
from bench.sink import Sink
from monitor.store import Store

_SCRIPT = Path(sys.executable).with_name("monitor")


def monitor_command(how: str) -> list[str]:
    """``script``: the console script, as deployed (Dockerfile, systemd unit);
    ``module``: ``python -m monitor``. They differ in what each parse worker imports:
    multiprocessing re-runs a script ``__main__`` in every worker (the whole CLI), not
    a ``-m`` package's ``__main__``."""
    if how == "script" and _SCRIPT.exists():
        return [str(_SCRIPT)]
    return [sys.executable, "-m", "monitor"]


DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BENCH_DATABASE = "bench_monitor"


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    path.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    return path


class Daemon:
    """One ``monitor run`` process."""

    def __init__(
        self, config: Path, name: str = "daemon", command: str = "script", cpu: int | None = None
    ) -> None:
        self.log_path = config.with_name(f"{name}.log")
        self._log = self.log_path.open("w", encoding="utf-8")
        self.started = time.time()
        self.proc = subprocess.Popen(
            [*_pinned(cpu), *monitor_command(command), "run", "-c", str(config)],
            cwd=ROOT,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def memory(self) -> dict[str, Any]:
        """Peak RSS of the daemon and of its descendants, now (MB)."""
        main = _status(self.proc.pid)
        children = descendants(self.proc.pid)
        kids = [_status(pid) for pid in children]
        return {
            "daemon_peak_rss_mb": main.get("VmHWM", 0.0),
            "daemon_rss_mb": main.get("VmRSS", 0.0),
            "daemon_pss_mb": _pss(self.proc.pid),
            "children": len(children),
            "children_peak_rss_mb_sum": round(sum(k.get("VmHWM", 0.0) for k in kids), 1),
            "children_peak_rss_mb_max": max((k.get("VmHWM", 0.0) for k in kids), default=0.0),
            "children_pss_mb_sum": round(sum(_pss(pid) for pid in children), 1),
        }

    def stop(self) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)

    def tail(self, lines: int = 5) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _pinned(cpu: int | None) -> list[str]:
    """``taskset -c CPU`` (the process and its parse workers run on that CPU only)."""
    if cpu is None:
        return []
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("--pin-instances needs taskset (util-linux)")
    return [taskset, "-c", str(cpu % (os.cpu_count() or 1))]


def _status(pid: int) -> dict[str, float]:
    """VmHWM, VmRSS of a process in MB (empty when it is gone)."""
    found: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pss(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children...)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


class Progress:
    """How many feeds of a database have been polled (a plain engine, read only)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def polled(self) -> tuple[int, int]:
        """(feeds polled at least once, of those the ones whose last poll failed)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT count(*), coalesce(sum(CASE WHEN last_error IS NULL THEN 0 ELSE 1 END), 0) "
                    "FROM feeds WHERE last_poll_at IS NOT NULL"
                )
            ).one()
        return int(row[0]), int(row[1])

    def wait_all(self, feeds: int, timeout: float, daemons: Sequence[Daemon]) -> tuple[float, int]:
        """Block until every feed was polled; (unix time it happened, failed polls)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, failed = self.polled()
            if done >= feeds:
                return time.time(), failed
            if not all(d.alive() for d in daemons):
                raise RuntimeError("a daemon exited early:\n" + "\n".join(d.tail() for d in daemons))
            time.sleep(0.1)
        raise TimeoutError(f"feeds not all polled within {timeout:.0f}s ({self.polled()[0]} of {feeds})")

    def close(self) -> None:
        self.engine.dispose()


def daemon_settings(
    database: str, urls: Sequence[str], rules: Sequence[dict[str, Any]], sink: Sink, **poll: Any
) -> dict[str, Any]:
    return {
        "database": database,
        "poll": {"first_poll": "recent", **poll},
        "shutdown_grace": "5s",
        "channels": {"hook": sink.url},
        "feeds": [{"name": f"Feed {i}", "url": url, "full_text": "never"} for i, url in enumerate(urls)],
        "rules": list(rules),
    }


@dataclass
class LatencyRun:
    cold_round_s: float
    cold_failed: int
    published: int
    arrived: int
    latencies_s: list[float]
    memory: dict[str, Any]
    interval_s: float
    rules: int


def latency_and_memory(
    work: Path,
    server: FeedServer,
    sink: Sink,
    rules: Sequence[dict[str, Any]],
    *,
    interval: float,
    concurrency: int,
    publishes: int,
    seed: int,
    out: Any,
    command: str = "script",
) -> LatencyRun:
    """A daemon on SQLite polls every feed (the cold round), then ``publishes`` items that
    the latency probe rule matches appear on random feeds at random moments over one
    poll interval; each one's latency is its arrival at the sink minus the moment the
    server started serving it. Memory is read before the daemon stops."""
    database = f"sqlite:///{work / 'daemon.db'}"
    Store.open(database).close()  # schema first: its creation is not part of the run
    config = write_config(
        work / "daemon.yaml",
        daemon_settings(
            database, server.urls, rules, sink, interval=f"{interval:g}s", concurrency=concurrency
        ),
    )
    progress = Progress(database)
    daemon = Daemon(config, "latency", command)
    try:
        began = time.time()
        finished, failed = progress.wait_all(len(server.urls), 3600, [daemon])
        print(f"  daemon cold round: {finished - began:.1f}s ({failed} failed)", file=out, flush=True)
        rng = random.Random(f"{seed}:latency")
        feeds = rng.sample(range(len(server.urls)), min(publishes, len(server.urls)))
        moments = sorted(rng.uniform(0, interval) for _ in feeds)
        start = time.monotonic()
        published: dict[str, float] = {}
        for n, (feed, moment) in enumerate(zip(feeds, moments, strict=True)):
            time.sleep(max(0.0, start + moment - time.monotonic()))
            token = f"bench-{seed}-{n:04d}"
            published[token] = server.publish(feed, token)
        deadline = time.monotonic() + 2 * interval + 60
        latencies: dict[str, float] = {}
        while time.monotonic() < deadline and len(latencies) < len(published):
            for token, at in published.items():
                if token not in latencies and (seen := sink.arrivals(token)):
                    latencies[token] = min(seen) - at
            time.sleep(0.2)
        memory = daemon.memory()
    finally:
        daemon.stop()
        progress.close()
    return LatencyRun(
        cold_round_s=finished - began,
        cold_failed=failed,
        published=len(published),
        arrived=len(latencies),
        latencies_s=sorted(latencies.values()),
        memory=memory,
        interval_s=interval,
        rules=len(rules),
    )


def postgres_admin_url(url: str | None) -> str:
    return url or DEFAULT_PG


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(_conninfo(url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    try:
        _admin(url, "SELECT 1")
    except Exception as e:
        return f"PostgreSQL at {make_url(url).render_as_string()} is unreachable: {str(e).splitlines()[0]}"
    return None


def instances_cold(
    work: Path,
    server: FeedServer,
    sink: Sink,
    rules: Sequence[dict[str, Any]],
    *,
    admin_url: str,
    instances: int,
    concurrency: int,
    out: Any,
    command: str = "script",
    pin: bool = False,
) -> dict[str, Any]:
    """``instances`` daemons on a fresh PostgreSQL database poll every feed once (a cold
    cycle); seconds from the first feed request the server saw to the moment the database
    shows every feed polled. The database is created for the run and dropped after.

    ``pin``: instance ``n`` runs on CPU ``n`` only, so that one instance has one CPU and
    two have two, as two machines would (the feed server and PostgreSQL are not pinned)."""
    database = make_url(admin_url).set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    _admin(admin_url, f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
    _admin(admin_url, f"CREATE DATABASE {BENCH_DATABASE}")
    daemons: list[Daemon] = []
    progress = Progress(database)
    try:
        Store.open(database).close()
        config = write_config(
            work / f"pg{instances}.yaml",
            daemon_settings(database, server.urls, rules, sink, interval="1h", concurrency=concurrency),
        )
        server.reset()
        spawned = time.time()
        daemons = [
            Daemon(config, f"pg{instances}-{n}", command, n if pin else None) for n in range(instances)
        ]
        finished, failed = progress.wait_all(len(server.urls), 3600, daemons)
        first = server.stats()["first"] or spawned
        result = {
            "instances": instances,
            "pinned": pin,
            "command": command,
            "seconds": finished - first,
            "seconds_from_spawn": finished - spawned,
            "failed": failed,
        }
        print(
            f"  {instances} instance(s) on PostgreSQL: {finished - first:.1f}s ({failed} polls failed)",
            file=out,
            flush=True,
        )
        return result
    finally:
        for daemon in daemons:
            daemon.stop()
        progress.close()
        _admin(admin_url, f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
