"""The command line of DESIGN.md. Thin: parse arguments, call the app, print, exit code.

Exit codes: 0 success, 1 an operational failure (database, channel), 2 invalid
configuration or usage. Errors are one line on stderr; ``--debug`` adds tracebacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

import httpx

from monitor import __version__
from monitor.app import App, utc_now
from monitor.commands import db, feeds, healthcheck, rules, stories
from monitor.commands._common import add_config_option, table, when
from monitor.config import Settings, listen_address, load_settings
from monitor.errors import ConfigError, MonitorError
from monitor.log import configure, install_redactor, redact_text
from monitor.memory import limit_malloc_arenas
from monitor.models import Alert, FeedStatus, Snippet
from monitor.notify import check_url
from monitor.reload import watch_config
from monitor.scheduler import Daemon
from monitor.store import InstanceLocked, instance_lock
from monitor.store.about_queue import AboutBacklog

log = logging.getLogger("monitor")
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monitor`` console script."""
    args = _parser().parse_args(argv)
    configure(args.log_level, args.log_format)
    try:
        return int(args.handler(args))
    except ConfigError as e:
        print(redact_text(str(e)), file=sys.stderr)
        return EXIT_CONFIG
    except MonitorError as e:
        if args.debug:
            raise
        print(redact_text(f"monitor: {e}"), file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="Watch news feeds; alert on matching articles."
    )
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--log-level", default=os.environ.get("MONITOR_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        if name != "demo":
            add_config_option(sub)
        return sub

    run = command("run", _run, "run the daemon (or one cycle with --once)")
    run.add_argument("--once", action="store_true", help="poll every feed once, send alerts, exit")
    command("check", _check, "validate the config file; exit 0 when valid, 2 when not")
    command("healthcheck", _healthcheck, "exit 0 when the running daemon says it is healthy (for probes)")
    status = command("status", _status, "feeds' health and deliveries per channel")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    test = command("notify-test", _notify_test, "send a test message through a channel")
    test.add_argument("channel")
    command("demo", _demo, "offline end-to-end demo on a bundled real article")
    deliveries = command("deliveries", _deliveries, "manage the delivery outbox")
    deliveries.add_argument("action", choices=("retry",), help="retry: send pending and dead deliveries now")
    deliveries.add_argument("--channel", help="only this channel")
    feeds.register(commands)
    db.register(commands)
    rules.register(commands)
    stories.register(commands)
    return parser


def load(path: Path, *, require_env: bool = True) -> Settings:
    """Load and fully validate the config; from then on output hides its secrets."""
    settings = load_settings(path, check_url=check_url if require_env else None, require_env=require_env)
    install_redactor(settings.redactor())
    return settings


def _check(args: argparse.Namespace) -> int:
    settings = load(args.config)
    print(
        f"{args.config}: OK ({len(settings.feeds)} feeds, {len(settings.rules)} rules, "
        f"{len(settings.channels)} channels)"
    )
    return EXIT_OK


def _healthcheck(args: argparse.Namespace) -> int:
    """Asks the running daemon; reads only the listen address (the file may hold an edit
    the daemon refused). Exits 0 or 1 only: container runtimes reserve 2."""
    try:
        listen = listen_address(args.config)
    except ConfigError as e:
        print(f"monitor: healthcheck: {e}", file=sys.stderr)
        return EXIT_FAILURE
    if not listen:
        print(
            f"monitor: {args.config}: healthcheck needs http.listen (e.g. 127.0.0.1:8787) "
            "or MONITOR_HTTP_LISTEN",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    host, _, port = listen.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    url = f"http://{host}:{port}/healthz"
    try:
        status, answer = healthcheck.ask(url)
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        print(f"monitor: healthcheck: {url}: {e or type(e).__name__}", file=sys.stderr)
        return EXIT_FAILURE
    print(answer)
    return EXIT_OK if status == 200 else EXIT_FAILURE


def _run(args: argparse.Namespace) -> int:
    settings = load(args.config)
    limit_malloc_arenas()  # before any thread: the daemon's memory (monitor.memory)
    with instance_lock(settings.database), App.from_settings(settings) as app:
        if args.once:
            report = app.run_once()
            errors = sum(1 for o in report.outcomes if o.status == "error")
            log.info(
                "cycle feeds=%d errors=%d sent=%d failed=%d about_judged=%d about_failed=%d",
                len(report.outcomes),
                errors,
                report.delivery.sent + report.about.sent + sum(o.sent for o in report.outcomes),
                report.delivery.failed + sum(o.failed for o in report.outcomes),
                report.about.judged,
                report.about.failed,
            )
            return EXIT_OK
        stop = threading.Event()
        daemon = Daemon(app, load_config=lambda: load(args.config))
        _on_signals(stop, daemon)
        watch_config(args.config, daemon.request_reload, stop)
        daemon.run(stop)
    if daemon.abandoned:
        # Polls still running past the grace hold no committed work; do not wait for them.
        logging.shutdown()
        os._exit(EXIT_OK)
    return EXIT_OK


def _on_signals(stop: threading.Event, daemon: Daemon) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received", signal.Signals(signum).name)
        stop.set()

    def hangup(_signum: int, _frame: FrameType | None) -> None:
        log.info("signal SIGHUP received: reloading the config")
        daemon.request_reload()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, hangup)


def _status(args: argparse.Namespace) -> int:
    settings = load(args.config, require_env=False)
    with App.from_settings(settings, upgrade=False) as app:
        feeds = app.store.feed_statuses()
        channels = app.store.channel_statuses()
        backlog = app.store.about_backlog()
        failures = app.store.about_failures() if backlog.gave_up else []
    if args.json:
        about = asdict(backlog) | {
            "failures": [{"article_id": i, "title": t, "error": e} for i, t, e in failures]
        }
        print(
            redact_text(
                json.dumps(
                    {
                        "feeds": [asdict(f) for f in feeds],
                        "channels": [asdict(c) for c in channels],
                        "about": about,
                    },
                    default=_json_default,
                    indent=2,
                )
            )
        )
        return EXIT_OK
    zone = settings.channel_timezone("")
    rows = [
        ("FEED", "HEALTH", "LAST POLL", "LAST SUCCESS", "ARTICLES", "ALERTS", "FAILS", "LAST ERROR / WARNING")
    ]
    for f in feeds:
        rows.append(
            (
                f.name + ("" if f.active else " (removed)"),
                "disabled" if f.disabled else f.health,
                when(f.last_poll_at, zone),
                when(f.last_success_at, zone),
                str(f.articles),
                str(f.alerts),
                str(f.error_count),
                _problem(f)[:80],
            )
        )
    print(redact_text(table(rows)))
    print()
    crows = [("CHANNEL", "PENDING", "RETRYING", "SENT", "DEAD", "LAST ERROR")]
    crows += [
        (c.channel, str(c.pending), str(c.retrying), str(c.sent), str(c.dead), (c.last_error or "")[:80])
        for c in channels
    ]
    print(redact_text(table(crows)) if channels else "No deliveries yet.")
    if backlog.pending or backlog.gave_up:
        print()
        print(redact_text(_about_lines(backlog, failures, zone)))
    return EXIT_OK


def _about_lines(backlog: AboutBacklog, failures: list[tuple[int, str, str]], zone: ZoneInfo) -> str:
    """The about queue: what waits for the model, and what it gave up on (with why)."""
    lines = [
        f"About rules: {backlog.pending} article(s) waiting for the model"
        + (f" (oldest queued {when(backlog.oldest, zone)})" if backlog.oldest else "")
        + f", {backlog.gave_up} given up."
    ]
    lines += [f"  gave up: {title[:60]} (article {i}): {error[:120]}" for i, title, error in failures]
    return "\n".join(lines)


def _problem(feed: FeedStatus) -> str:
    """What a person should look at: the error of a failing feed, else its last warning."""
    if feed.error_count or feed.disabled:
        return feed.disabled or feed.last_error or ""
    return f"warning: {feed.last_warning}" if feed.last_warning else ""


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _notify_test(args: argparse.Namespace) -> int:
    settings = load(args.config)
    if args.channel not in settings.channels:
        known = ", ".join(sorted(settings.channels)) or "none"
        print(
            f"monitor: {args.config}: no channel named '{args.channel}' (channels: {known})", file=sys.stderr
        )
        return EXIT_CONFIG
    with App.from_settings(settings, upgrade=False) as app:
        text = f"If you can read this, channel '{args.channel}' works. Alerts will look like this message."
        app.notifier.send(
            Alert(
                delivery_id=0,
                channel=args.channel,
                feed="monitor",
                title="Test message from monitor",
                link=None,
                published=utc_now(),
                rules=("notify-test",),
                snippet=Snippet(text=text, highlights=((text.index("works"), text.index("works") + 5),)),
            )
        )
    print(f"sent a test message through '{args.channel}'")
    return EXIT_OK


def _deliveries(args: argparse.Namespace) -> int:
    settings = load(args.config)
    if args.channel is not None and args.channel not in settings.channels:
        known = ", ".join(sorted(settings.channels)) or "none"
        print(f"monitor: no channel named '{args.channel}' (channels: {known})", file=sys.stderr)
        return EXIT_CONFIG
    with App.from_settings(settings, upgrade=False) as app, ExitStack() as held:
        try:  # on SQLite, send only while no daemon runs: it drops every claim when it starts
            held.enter_context(instance_lock(settings.database))
        except InstanceLocked as e:
            count = app.store.make_due(app.clock(), args.channel)
            print(f"{count} message(s) made due now; monitor (pid {e.holder}) is running and sends them")
            return EXIT_OK
        count = app.store.make_due(app.clock(), args.channel)
        report = app.courier.deliver(limit=max(count, 1))
    for o in report.outcomes:
        detail = f": {o.error}" if o.error else ""
        if o.status == "lost":
            detail = ": another process is sending it"
        print(f"{o.status:<5} {o.channel}  {o.title}{detail}")
    print(f"{report.sent} sent, {report.failed} failed")
    return EXIT_OK if report.failed == 0 else EXIT_FAILURE


def _demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    report = run_demo(sys.stdout)
    ok = all(o.status == "ok" for o in report.outcomes)
    return EXIT_OK if ok else EXIT_FAILURE
