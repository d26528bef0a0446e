"""Poll cycles on a loopback news site: monitor against a naive loop, raw HTTP, feedparser
alone and the ``reader`` library, one and two instances on PostgreSQL, daemon memory and
alert latency. Everything in one run, on the same feeds.

``python -m bench cycle [-- --feeds 1000 --rules 1000 --latency 150 ...]``; ``make bench
N=200 RULES=100 LATENCY=50`` passes the three through ``BENCH_FEEDS``, ``BENCH_RULES``
and ``BENCH_LATENCY`` (milliseconds).

Setup: ``bench.feeds_server`` serves ``--feeds`` RSS feeds of ``--items`` items (40 to 70
KB each, world-news-like, deterministic from ``--seed``) on 200 loopback addresses, every
response delayed by ``--latency`` ms, with ETag/Last-Modified (304) and gzip; a rule set
of ``--rules`` rules (``bench.news.rules``: a few watch people and topics that are in
the news, so alerts happen); a ``json://`` webhook sink that notes arrival times.

Measured, in this order (each step alone on the machine); every measurement that a
ratio compares repeats ``--runs`` times (default 5), alternating with its baseline, and
a ratio is the median of the paired runs with its min-max spread (``bench.steady``):

1. cold rounds: monitor's ``App.run_once`` on a fresh SQLite file, every entry new
   (``poll.first_poll: recent``: entries of the last 24 hours alert, through the sink);
   then raw HTTP (a bare ``httpx.Client`` in ``--concurrency`` threads, a plain GET of
   every URL), feedparser alone parsing those bodies one after another in this process,
   and ``reader`` (its own venv, ``bench/.venv-reader``) updating a fresh database;
2. warm rounds on the last cold database: monitor's ``run_once`` again, nothing changed
   (every feed answers 304); raw HTTP's conditional GET of every URL; the naive loop
   (``feedparser.parse(url)`` for each feed, keyword ``in`` checks); then reader's warm
   update, once;
3. matching throughput: monitor's Matcher on the entries of up to 100 feeds;
4. monitor warm cycle with ``--changed`` of the feeds changed (3 new items each);
5. dynamic-bodies rounds: the server sends no validators and a new timestamp in every
   body; each round gives ``--dynamic-share`` of the feeds one new item, then monitor's
   cycle and reader's update run (item skipping, ADR 0019);
6. PostgreSQL: one ``monitor run`` daemon, then two, on a fresh database
   (``bench_monitor``, dropped after), until every feed was polled once (``--pg-runs``
   pairs, default ``--runs``);
7. a ``monitor run`` daemon on SQLite with ``--daemon-rules`` rules and a
   ``--interval`` poll interval: after its cold round, ``--publishes`` matching items
   appear on random feeds at random moments; alert latency = arrival at the sink minus
   appearance on the server; the daemon's peak RSS (VmHWM) is read before it stops.

Output: a table, and ``bench/results.json`` (git-ignored; also copied to
``bench/results/cycle.json`` beside the other benchmarks' results) with the ratios (above
1 means monitor is faster), their ``spreads`` ([min, max], same keys), every run's
timings and what each target asked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bench import baselines, daemons, news, steady
from bench.feeds_server import FeedServer
from bench.sink import Sink
from monitor.about_job import AboutReport
from monitor.app import App, CycleReport
from monitor.config import Settings, WatchRule
from monitor.match import Matcher
from monitor.models import Fetched
from monitor.parse import parse

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
TARGETS: dict[str, tuple[str, float]] = {  # name -> (comparison, threshold): issue 13
    "warm_vs_naive": (">=", 30.0),
    "warm_vs_raw_http": (">=", 0.9),
    "cold_vs_reader": (">=", 2.0),
    "cold_vs_raw_http": (">=", 1 / 1.5),
    "cold_vs_parse_only": (">=", 1 / 1.2),
    "dynamic_vs_reader": (">=", 3.0),
    "two_vs_one_instance": (">=", 1.7),
}
RATIOS: dict[str, tuple[str, str]] = {  # name -> (baseline's timing, monitor's timing)
    "warm_vs_naive": ("naive", "monitor_warm"),
    "warm_vs_raw_http": ("raw_http_warm", "monitor_warm"),
    "cold_vs_reader": ("reader_cold", "monitor_cold"),
    "cold_vs_raw_http": ("raw_http_cold", "monitor_cold"),
    "cold_vs_parse_only": ("parse_only", "monitor_cold"),
    "dynamic_vs_reader": ("reader_dynamic", "monitor_dynamic"),
    "two_vs_one_instance": ("pg_one_instance", "pg_two_instances"),
}
ABOUT_TARGET = 1.5  # a cold cycle with 20 about rules within 1.5x of one without (issue 12)
ABOUT_RATIO = ("monitor_cold_about", "monitor_cold_paired")  # slower over faster: what about rules cost


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _milliseconds(value: str) -> float:
    """``150``, ``150ms`` or ``0.15s`` -> milliseconds."""
    value = value.strip().lower()
    if value.endswith("ms"):
        return float(value[:-2])
    if value.endswith("s"):
        return float(value[:-1]) * 1000
    return float(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=_env_int("BENCH_FEEDS", 1000))
    parser.add_argument("--items", type=int, default=50, help="items per feed")
    parser.add_argument("--rules", type=int, default=_env_int("BENCH_RULES", 1000))
    parser.add_argument(
        "--latency",
        type=_milliseconds,
        default=_milliseconds(os.environ.get("BENCH_LATENCY", "").strip() or "150"),
        help="milliseconds before each feed response (default 150)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="poll.concurrency, and the baselines'")
    parser.add_argument("--changed", type=float, default=0.1, help="share of feeds changed for step 7")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--daemon-rules", type=int, default=10_000, help="rules of the memory/latency daemon")
    parser.add_argument("--interval", type=float, default=60.0, help="poll interval (s) of that daemon")
    parser.add_argument("--publishes", type=int, default=20, help="items published for the latency test")
    parser.add_argument(
        "--naive-feeds", type=int, default=0, help="run the naive loop on this many feeds only"
    )
    _steady_arguments(parser)
    parser.add_argument("--postgres-url", default=os.environ.get("MONITOR_TEST_DATABASE_URL") or None)
    parser.add_argument(
        "--daemon-command",
        choices=("script", "module"),
        default="script",
        help="run daemons as the `monitor` console script (as deployed) or `python -m monitor`",
    )
    parser.add_argument(
        "--pin-instances",
        action="store_true",
        help="PostgreSQL step: pin instance n to CPU n (one CPU per instance, like separate machines)",
    )
    parser.add_argument(
        "--no-cycles", action="store_true", help="skip steps 1-7 (in-process cycles, baselines)"
    )
    parser.add_argument(
        "--full-text",
        choices=("never", "always"),
        default="never",
        help="feeds' full_text; always: every new item's article page is read (from the feed server)",
    )
    parser.add_argument(
        "--extraction",
        choices=("monitor", "one-pass"),
        default="monitor",
        help="one-pass: a single trafilatura precision pass in the extraction workers (what the "
        "poll threads did before ADR 0011), to measure the cost of isolation alone",
    )
    parser.add_argument(
        "--about",
        type=int,
        default=_env_int("BENCH_ABOUT", 0),
        help="also run the cold cycle with this many `about` rules added (and give them to the daemon)",
    )
    parser.add_argument(
        "--about-gate",
        choices=("words", "none"),
        default="words",
        help="words: each about rule also needs a country and its topic (all:), as a desk scopes one; "
        "none: no words, every recent entry is embedded",
    )
    parser.add_argument("--no-reader", action="store_true", help="skip reader (no venv is made)")
    parser.add_argument("--no-postgres", action="store_true", help="skip one vs two instances")
    parser.add_argument("--no-daemon", action="store_true", help="skip daemon memory and alert latency")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (databases, daemon logs)")
    return parser


def _steady_arguments(parser: argparse.ArgumentParser) -> None:
    """How often each measurement repeats, and the dynamic-bodies scenario (issue 13)."""
    parser.add_argument("--runs", type=int, default=5, help="runs of each ratio, alternating (default 5)")
    parser.add_argument("--pg-runs", type=int, default=0, help="runs of one vs two daemons (default --runs)")
    parser.add_argument(
        "--spread-limit",
        type=float,
        default=steady.SPREAD_LIMIT,
        help="a ratio's spread above this share of its median is too wide to trust",
    )
    parser.add_argument(
        "--dynamic-share", type=float, default=0.1, help="share of feeds with a new item per dynamic round"
    )


def about_rules(count: int, gate: str, channel: str = "hook") -> list[dict[str, Any]]:
    """``count`` rules by meaning: a topic of the news world described in prose; with
    ``gate == "words"`` each also needs a country and the topic's word (``all:``)."""
    made = []
    for i in range(count):
        topic = news.TOPICS[i % len(news.TOPICS)]
        country = news.COUNTRIES[(7 * i) % len(news.COUNTRIES)]
        rule: dict[str, Any] = {
            "name": f"about {i}",
            "about": f"news reports about {topic} and how governments and people respond",
            "notify": [channel],
        }
        if gate == "words":
            rule["all"] = [country, topic]
        made.append(rule)
    return made


def embedded_passages(app: App) -> int:
    """Vectors in the cache: the passages the cycle embedded (each once)."""
    from sqlalchemy import func, select

    from monitor.store.tables import EMBEDDINGS

    with app.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(EMBEDDINGS)).scalar_one())


def monitor_settings(
    database: str,
    urls: Sequence[str],
    rules: Sequence[dict[str, Any]],
    sink: Sink,
    concurrency: int,
    full_text: str = "never",
) -> Settings:
    return Settings.model_validate(
        {
            "database": database,
            "poll": {"concurrency": concurrency, "first_poll": "recent"},
            "channels": {"hook": sink.url},
            "feeds": feed_specs(urls, full_text),
            "rules": list(rules),
        }
    )


def feed_specs(urls: Sequence[str], full_text: str = "never") -> list[dict[str, Any]]:
    """The feeds as config entries. ``full_text: never`` by default: no baseline reads
    pages; ``always`` (``--full-text``) reads the pages the feed server then serves."""
    return [{"name": f"Feed {i}", "url": url, "full_text": full_text} for i, url in enumerate(urls)]


def page_errors(app: App) -> dict[str, int]:
    """Article pages read, and why the others were not (the text before the first colon
    pair, e.g. ``skipped: budget``), after a cycle with ``--full-text``."""
    from sqlalchemy import text

    with app.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT page_text <> '' AS read, page_error FROM articles")).all()
    counts = Counter("read" if r.read else ":".join((r.page_error or "none").split(":")[:2]) for r in rows)
    return dict(counts)


def precision_pass(page: Any) -> str:
    """One trafilatura pass in precision mode, as extraction was before ADR 0011."""
    import trafilatura

    from monitor.text import collapse_whitespace

    text = trafilatura.extract(
        page.body,
        url=page.url,
        favor_precision=True,
        include_comments=False,
        include_tables=False,
        deduplicate=False,
    )
    return collapse_whitespace(text or "")


def _one_pass_extraction(app: App) -> None:
    """Swap the app's extraction workers for ones running ``precision_pass`` (bench only)."""
    import dataclasses

    from monitor.extract_pool import ExtractPool

    pool = ExtractPool(
        timeout=app.settings.fetch.page_timeout.total_seconds(),
        size=app.extract_pool.size,
        function=precision_pass,
    )
    app.extract_pool.close()
    app.extract_pool = pool
    app.use_deps(dataclasses.replace(app.deps, extractor=pool.extract))


def summary(report: CycleReport, seconds: float) -> dict[str, Any]:
    statuses = Counter(o.status for o in report.outcomes)
    errors = [o.error for o in report.outcomes if o.error][:3]
    return {
        "seconds": seconds,
        "feeds": len(report.outcomes),
        "statuses": dict(statuses),
        "new": sum(o.new for o in report.outcomes),
        "matched": sum(o.matched for o in report.outcomes),
        "sent": sum(o.sent for o in report.outcomes) + report.delivery.sent,
        "failed_sends": sum(o.failed for o in report.outcomes) + report.delivery.failed,
        "skipped": sum(o.skipped for o in report.outcomes),
        "first_errors": errors,
    }


def timed_cycle(app: App, skip: Collection[int] = ()) -> dict[str, Any]:
    """``run_once`` timed, with the CPU seconds it took in this process (the poll
    threads, under one GIL) and in the parse workers (descendants but ``skip``)."""
    mark = _cpu_mark(skip)
    began = time.perf_counter()
    report = app.run_once()
    seconds = time.perf_counter() - began
    return summary(report, seconds) | _cpu_since(mark, skip)


def about_cycle(app: App, skip: Collection[int] = ()) -> dict[str, Any]:
    """A cold cycle as the daemon runs it with ``about`` rules: the polls (and their word
    alerts) on the poll threads while the about job drains the queue beside them
    (ADR 0020). ``seconds`` is the polls' cycle; ``about_drain_s`` is when the queue was
    empty, both from the start."""
    mark = _cpu_mark(skip)
    polled = threading.Event()
    reports: list[AboutReport] = []

    def judge() -> None:
        while not polled.is_set():
            reports.append(app.judge_about("bench-about", stop=polled.is_set))
            if not reports[-1].judged:
                polled.wait(0.25)  # the daemon's tick: nothing queued yet
        reports.append(app.judge_about("bench-about"))  # the rest, after the last poll

    began = time.perf_counter()
    judging = threading.Thread(target=judge, name="about-job")
    judging.start()
    outcomes = app.poll_all("bench-polls")
    delivery = app.courier.deliver(limit=10_000)
    seconds = time.perf_counter() - began
    polled.set()
    judging.join()
    drained = time.perf_counter() - began
    about = sum(reports, AboutReport())
    report = CycleReport(tuple(outcomes), delivery, about)
    return (
        summary(report, seconds)
        | {
            "about_drain_s": round(drained, 2),
            "about_judged": about.judged,
            "about_matched": about.matched,
        }
        | _cpu_since(mark, skip)
    )


def _cpu_mark(skip: Collection[int]) -> tuple[float, float]:
    """CPU seconds so far: this process (the poll threads, under one GIL), and its parse
    workers (descendants but ``skip``)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime, _parse_cpu(skip)


def _cpu_since(mark: tuple[float, float], skip: Collection[int]) -> dict[str, float]:
    """The CPU seconds used since ``mark`` (``_cpu_mark``), as the cycle records name them."""
    own, workers = _cpu_mark(skip)
    return {
        "main_process_cpu_s": round(own - mark[0], 2),
        "parse_workers_cpu_s": round(workers - mark[1], 2),
    }


def _parse_cpu(skip: Collection[int]) -> float:
    """CPU seconds used so far by this process's descendants (workers that exited and
    were replaced are not counted)."""
    return sum(daemons.cpu_seconds(pid) for pid in daemons.descendants(os.getpid()) if pid not in skip)


def matching(bodies: Sequence[bytes], rules: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Monitor's Matcher on the entries of up to 100 of the cold bodies."""
    now = datetime.now(UTC)
    entries = []
    for n, body in enumerate(bodies[:100]):
        url = f"http://127.0.0.1/feeds/{n}.xml"
        fetched = Fetched(
            url=url,
            final_url=url,
            status=200,
            body=body,
            content_type="application/rss+xml",
            etag=None,
            last_modified=None,
            fetched_at=now,
            moved_to=None,
            max_age=None,
        )
        entries += [(f"Feed {n}", e) for e in parse(fetched).entries]
    began = time.perf_counter()
    matcher = Matcher([WatchRule.model_validate(r) for r in rules])
    build = time.perf_counter() - began
    began = time.perf_counter()
    matched = sum(1 for feed, entry in entries if matcher.match(entry, feed))
    seconds = time.perf_counter() - began
    report: dict[str, Any] = {
        "rules": len(rules),
        "articles": len(entries),
        "seconds": seconds,
        "articles_per_s": len(entries) / seconds if seconds else None,
        "articles_matched": matched,
        "build_s": build,
    }
    other = HERE / "results" / "matching.json"
    if other.exists():  # bench/matching.py's own numbers, when it ran before
        try:
            rows = json.loads(other.read_text(encoding="utf-8"))["rows"]
            report["bench_matching"] = {str(r["rules"]): round(r["articles_per_s"]) for r in rows}
        except (ValueError, KeyError, TypeError):
            pass
    return report


def percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


@contextlib.contextmanager
def _work_folder(keep: bool) -> Iterator[Path]:
    if keep:
        yield Path(tempfile.mkdtemp(prefix="bench-cycle-"))
        return
    with tempfile.TemporaryDirectory(prefix="bench-cycle-") as tmp:
        yield Path(tmp)


class Run:
    """One benchmark run: the site, the sink, and what was measured so far."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.runs = steady.Runs()
        self.notes: dict[str, str] = {}
        self.details: dict[str, Any] = {}
        self.load_start = list(os.getloadavg())  # other work on the machine skews every number
        self.skip: set[int] = set()  # processes that are not monitor's (CPU accounting)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def run(self) -> dict[str, Any]:
        args = self.args
        world = news.NewsWorld.make(args.seed)
        rules = news.rules(world, args.rules)
        self.say(
            f"cycle: {args.feeds:,} feeds x {args.items} items, {args.rules:,} rules, "
            f"{args.latency:g} ms latency, concurrency {args.concurrency}, {args.runs} runs each"
        )
        began = time.perf_counter()
        server = FeedServer(
            feeds=args.feeds,
            items=args.items,
            seed=args.seed,
            latency=args.latency / 1000,
            pages=args.full_text != "never",
        )
        self.skip.add(server.proc.pid)
        sink = Sink()
        self.say(f"  feed server ready in {time.perf_counter() - began:.1f}s")
        with _work_folder(args.keep) as work:
            if args.keep:
                self.say(f"  work folder (kept): {work}")
            try:
                if not args.no_cycles:
                    self.in_process(work, server, sink, world, rules)
                else:
                    self.notes["cold_vs_reader"] = self.notes["dynamic_vs_reader"] = "skipped (--no-cycles)"
                self.postgres(work, server, sink, rules)
                self.daemon(work, server, sink, world)
            finally:
                sink.close()
                server.close()
        return self.report(rules)

    def in_process(
        self, work: Path, server: FeedServer, sink: Sink, world: news.NewsWorld, rules: list[dict[str, Any]]
    ) -> None:
        """Steps 1-8: cold rounds, warm rounds, matching, a changed cycle, dynamic rounds."""
        reader = self.reader_session(server)
        try:
            app = self.cold_rounds(work, server, sink, rules, reader)
            with app:
                self.warm_rounds(app, server.urls, rules)
                if reader is not None:
                    self.timed_reader("reader_warm", reader.update)
                bodies = self.details.pop("_bodies")
                self.details["matching"] = matching(bodies, rules)
                m = self.details["matching"]
                self.say(f"  matching: {m['articles_per_s']:,.0f} articles/s with {m['rules']:,} rules")
                changed = server.change(self.args.changed)
                warm_changed = timed_cycle(app, self.skip)
                self.record("monitor_warm_changed", warm_changed, f"{len(changed)} feeds changed")
                if reader is not None:
                    reader.update()  # it sees that change too before the dynamic rounds
                self.dynamic_rounds(app, server, reader)
            if self.args.about:
                self.cold_with_about(work, server, sink, rules)
        finally:
            if reader is not None:
                reader.close()

    def cold_with_about(
        self, work: Path, server: FeedServer, sink: Sink, rules: list[dict[str, Any]]
    ) -> None:
        """``--runs`` rounds of: the cold cycle on a fresh database with ``--about`` rules by
        meaning added (the about job draining beside the polls; the first round loads the
        model), then the same cold cycle without them, as its pair."""
        args = self.args
        extra = about_rules(args.about, args.about_gate)
        for n in range(args.runs):
            server.reset()
            database = f"sqlite:///{work / f'monitor-about-{n}.db'}"
            settings = monitor_settings(
                database, server.urls, rules + extra, sink, args.concurrency, args.full_text
            )
            with App.from_settings(settings) as app:
                cold = about_cycle(app, self.skip)
                cold["about_rules"] = args.about
                cold["about_gate"] = args.about_gate
                cold["embedded_passages"] = embedded_passages(app)
                cold["peak_rss_mb_bench_process"] = round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                )
            note = (
                f"{cold['embedded_passages']:,} passages embedded; about queue drained "
                f"{cold['about_drain_s']:.1f}s after the start ({cold['about_judged']:,} judged, "
                f"{cold['about_matched']:,} matched)"
            )
            self.record("monitor_cold_about", cold, note)
            self.runs.add("monitor_about_drained", cold["about_drain_s"])
            server.reset()
            plain = monitor_settings(
                f"sqlite:///{work / f'monitor-plain-{n}.db'}",
                server.urls,
                rules,
                sink,
                args.concurrency,
                args.full_text,
            )
            with App.from_settings(plain) as app:
                self.record("monitor_cold_paired", timed_cycle(app, self.skip), "(the pair, no about rules)")

    def fresh_app(
        self, database: Path, urls: Sequence[str], rules: Sequence[dict[str, Any]], sink: Sink
    ) -> App:
        args = self.args
        settings = monitor_settings(
            f"sqlite:///{database}", urls, rules, sink, args.concurrency, args.full_text
        )
        app = App.from_settings(settings)
        if args.extraction == "one-pass":
            _one_pass_extraction(app)
        return app

    def cold_rounds(
        self,
        work: Path,
        server: FeedServer,
        sink: Sink,
        rules: Sequence[dict[str, Any]],
        reader: baselines.ReaderSession | None,
    ) -> App:
        """Each round: monitor cold on a fresh database, raw GET, feedparser alone, reader cold.
        Returns the last round's app (its database knows every feed)."""
        urls, raw = server.urls, baselines.RawHttp(self.args.concurrency)
        app: App | None = None
        try:
            for n in range(self.args.runs):
                if app is not None:
                    app.close()
                app = self.fresh_app(work / f"monitor-{n}.db", urls, rules, sink)
                cold = timed_cycle(app, self.skip)
                cold["page_errors"] = page_errors(app)
                self.record("monitor_cold", cold)
                first = raw.run(urls)
                self.runs.add("raw_http_cold", first.seconds)
                bodies = [first.bodies[u] for u in urls if u in first.bodies]
                seconds, entries = baselines.parse_only(bodies)
                self.runs.add("parse_only", seconds)
                self.details["parse_only"] = {"seconds": seconds, "bodies": len(bodies), "entries": entries}
                self.say(f"    raw httpx GET {first.seconds:.2f}s; feedparser alone {seconds:.2f}s")
                if reader is not None:
                    self.timed_reader("reader_cold", reader.cold)
        except BaseException:
            if app is not None:
                app.close()
            raise
        finally:
            raw.close()
        assert app is not None
        self.details["_bodies"], self.details["_etags"] = bodies, first.etags
        self.details["raw_http"] = {"cold_statuses": first.statuses}
        sizes = [len(b) for b in bodies]
        self.details["corpus"] = {
            "bodies": len(bodies),
            "bytes_min": min(sizes, default=0),
            "bytes_mean": round(statistics.fmean(sizes)) if sizes else 0,
            "bytes_max": max(sizes, default=0),
        }
        return app

    def warm_rounds(self, app: App, urls: Sequence[str], rules: Sequence[dict[str, Any]]) -> None:
        """Each round: monitor warm (every feed answers 304), raw conditional GET, the naive loop."""
        raw, etags = baselines.RawHttp(self.args.concurrency), self.details.pop("_etags")
        try:
            raw.run(urls, etags)  # the raw client's connections are as warm as monitor's
            for _ in range(self.args.runs):
                self.record("monitor_warm", timed_cycle(app, self.skip))
                again = raw.run(urls, etags)
                self.runs.add("raw_http_warm", again.seconds)
                self.details["raw_http"]["warm_statuses"] = again.statuses
                self.say(f"    raw httpx conditional GET {again.seconds:.2f}s")
                self.naive(urls, rules)
        finally:
            raw.close()

    def dynamic_rounds(self, app: App, server: FeedServer, reader: baselines.ReaderSession | None) -> None:
        """Each round: ``--dynamic-share`` of the feeds get one new item, every body a new
        timestamp and no validators; monitor's cycle, then reader's update."""
        if reader is None:
            self.notes["dynamic_vs_reader"] = self.notes.get("cold_vs_reader", "reader unavailable")
        server.dynamic(True)
        try:
            for _ in range(self.args.runs):
                changed = server.change(self.args.dynamic_share, items=1)
                cycle = timed_cycle(app, self.skip)
                self.record("monitor_dynamic", cycle, f"{len(changed)} feeds with a new item")
                if reader is not None:
                    self.timed_reader("reader_dynamic", reader.update)
        finally:
            server.dynamic(False)

    def record(self, name: str, cycle: dict[str, Any], note: str = "") -> None:
        self.runs.add(name, cycle["seconds"])
        self.details[name] = cycle
        self.details.setdefault(f"{name}_runs", []).append(cycle)
        skipped = f" skipped={cycle['skipped']:,}" if cycle.get("skipped") else ""
        self.say(
            f"  {name}: {cycle['seconds']:.2f}s {cycle['statuses']} new={cycle['new']:,} "
            f"matched={cycle['matched']} sent={cycle['sent']}{skipped}; CPU s: poll threads "
            f"{cycle['main_process_cpu_s']}, parse workers {cycle['parse_workers_cpu_s']} {note}".rstrip()
        )

    def naive(self, urls: Sequence[str], rules: Sequence[dict[str, Any]]) -> None:
        sample = urls[: self.args.naive_feeds] if self.args.naive_feeds else urls
        result = baselines.naive_loop(sample, [news.Keywords.of(r) for r in rules])
        scaled = result.seconds * len(urls) / max(1, len(sample))
        self.runs.add("naive", scaled)
        self.details["naive"] = asdict(result) | {"scaled_to_all_feeds_s": scaled}
        extra = f" (on {len(sample)} feeds, scaled)" if len(sample) < len(urls) else ""
        self.say(f"    naive loop: {scaled:.2f}s{extra}, {result.entries:,} entries, {result.hits} hits")

    def reader_session(self, server: FeedServer) -> baselines.ReaderSession | None:
        """reader in its venv, waiting for commands; None (and a note) when unavailable."""
        why: str | None = "skipped (--no-reader)"
        if not self.args.no_reader:
            python, why = baselines.reader_python(self.out)
            if python is not None:
                try:
                    session = baselines.ReaderSession(python, server.urls, self.args.concurrency)
                except (RuntimeError, OSError, ValueError) as e:
                    why = str(e)
                else:
                    self.skip.add(session.proc.pid)
                    self.details["reader"] = {"version": session.version}
                    return session
        self.notes["cold_vs_reader"] = self.notes["dynamic_vs_reader"] = why or "reader unavailable"
        self.say(f"  reader: {why}")
        return None

    def timed_reader(self, name: str, command: Callable[[], dict[str, Any]]) -> None:
        report = command()
        self.runs.add(name, report["seconds"])
        self.details[name] = report
        self.say(
            f"  {name}: {report['seconds']:.2f}s, {report['entries']:,} entries, {report['broken']} broken"
        )

    def postgres(self, work: Path, server: FeedServer, sink: Sink, rules: Sequence[dict[str, Any]]) -> None:
        if self.args.no_postgres:
            self.notes["two_vs_one_instance"] = "skipped (--no-postgres)"
            return
        url = daemons.postgres_admin_url(self.args.postgres_url)
        why = daemons.postgres_reachable(url)
        if why:
            self.notes["two_vs_one_instance"] = why
            self.say(f"  {why}")
            return
        runs = []
        for _ in range(self.args.pg_runs or self.args.runs):
            for count, name in ((1, "pg_one_instance"), (2, "pg_two_instances")):
                result = daemons.instances_cold(
                    work,
                    server,
                    sink,
                    rules,
                    admin_url=url,
                    instances=count,
                    concurrency=self.args.concurrency,
                    out=self.out,
                    command=self.args.daemon_command,
                    pin=self.args.pin_instances,
                )
                self.runs.add(name, result["seconds"])
                runs.append(result)
        self.details["postgres"] = runs
        failed = [
            f"{r['instances']} instance(s): {r['failed']:,} of {self.args.feeds:,} polls failed"
            for r in runs
            if r["failed"]
        ]
        if failed:
            self.notes["two_vs_one_instance"] = "; ".join(failed)

    def daemon(self, work: Path, server: FeedServer, sink: Sink, world: news.NewsWorld) -> None:
        if self.args.no_daemon:
            self.notes["peak_rss_mb"] = self.notes["latency_p95_s"] = "skipped (--no-daemon)"
            return
        rules = news.rules(world, self.args.daemon_rules) + about_rules(self.args.about, self.args.about_gate)
        about = f" + {self.args.about} about rules" if self.args.about else ""
        self.say(
            f"  daemon on SQLite: {self.args.daemon_rules:,} rules{about}, interval {self.args.interval:g}s"
        )
        run = daemons.latency_and_memory(
            work,
            server,
            sink,
            rules,
            interval=self.args.interval,
            concurrency=self.args.concurrency,
            publishes=self.args.publishes,
            seed=self.args.seed,
            out=self.out,
            command=self.args.daemon_command,
        )
        self.details["daemon"] = asdict(run)
        self.runs.add("daemon_cold_round", run.cold_round_s)
        self.say(
            f"  alerts: {run.arrived}/{run.published} arrived; latency p50 "
            f"{_num(percentile(run.latencies_s, 0.5))}s p95 {_num(percentile(run.latencies_s, 0.95))}s; "
            f"peak RSS {run.memory['daemon_peak_rss_mb']} MB (+{run.memory['children']} parse processes)"
        )

    def report(self, rules: Sequence[dict[str, Any]]) -> dict[str, Any]:
        measured = steady.ratios(self.runs, RATIOS)
        ratios = {name: r.value for name, r in measured.items()}
        spreads = {name: list(r.spread) if r.spread else None for name, r in measured.items()}
        limit = self.args.spread_limit
        wide = sorted(name for name, r in measured.items() if r.too_wide(limit))
        daemon = self.details.get("daemon")
        latencies = daemon["latencies_s"] if daemon else []
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        if daemon and daemon["arrived"] < daemon["published"]:
            self.notes["latency_p95_s"] = f"only {daemon['arrived']} of {daemon['published']} alerts arrived"
        peak = daemon["memory"]["daemon_peak_rss_mb"] if daemon else None
        memory = daemon["memory"] if daemon else None
        total = round(memory["daemon_pss_mb"] + memory["children_pss_mb_sum"], 1) if memory else None
        targets = {
            name: _target(ratios[name], f"{op} {limit_:.2f}", limit_)
            for name, (op, limit_) in TARGETS.items()
        }
        sized = f"{self.args.feeds:,} feeds, {self.args.daemon_rules:,} rules; asked: 1,000 and 10,000"
        targets["peak_rss_mb"] = _target(peak, f"< 400 ({sized})", 400, below=True)
        interval_limit = self.args.interval + 5
        targets["latency_p95_s"] = _target(
            p95, f"< {interval_limit:g} (interval + 5 s)", interval_limit, below=True
        )
        about = steady.ratios(self.runs, {"cold_about_vs_cold": ABOUT_RATIO})["cold_about_vs_cold"]
        if about.value is not None:
            ratios["cold_about_vs_cold"] = about.value
            spreads["cold_about_vs_cold"] = list(about.spread) if about.spread else None
            targets["cold_about_vs_cold"] = _target(
                about.value,
                f"< {ABOUT_TARGET} ({self.args.about} about rules)",
                ABOUT_TARGET,
                below=True,
            )
        return {
            "benchmark": "cycle",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "feeds": self.args.feeds,
            "items": self.args.items,
            "rules": len(rules),
            "latency_ms": self.args.latency,
            "concurrency": self.args.concurrency,
            "full_text": self.args.full_text,
            "extraction": self.args.extraction,
            "changed_share": self.args.changed,
            "dynamic_share": self.args.dynamic_share,
            "seed": self.args.seed,
            "runs": self.args.runs,
            "ratios": ratios,
            "spreads": spreads,
            "spread_limit": limit,
            "too_wide": wide,
            "ratio_runs": {name: self.runs.paired(*RATIOS[name]) for name in RATIOS},
            "ratio_notes": {k: v for k, v in self.notes.items() if k in ratios},
            "peak_rss_mb": peak,
            "peak_rss_total_mb": total,
            "load_average": {"start": self.load_start, "end": list(os.getloadavg())},
            "latency_p50_s": p50,
            "latency_p95_s": p95,
            "targets": targets,
            "notes": self.notes,
            "timings_s": self.runs.medians(),
            "timings_runs_s": self.runs.seconds,
            "details": self.details,
        }


def _target(value: float | None, text: str, limit: float, *, below: bool = False) -> dict[str, Any]:
    """A target: what it asks, the value, and whether it is met (None: not measured)."""
    met = None if value is None else (value < limit if below else value >= limit)
    return {"target": text, "value": value, "met": met}


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(report: dict[str, Any]) -> str:
    """The timings (median of the runs, and their range), then the ratios against their
    targets with their spread (``too wide``: the machine was too busy to trust it)."""
    t, runs = report["timings_s"], report.get("timings_runs_s", {})
    feeds = report["feeds"]
    rows: list[tuple[str, ...]] = [("measurement", "seconds", "range", "feeds/s")]
    names = [
        ("monitor_cold", "monitor cold cycle (all new)"),
        ("monitor_warm", "monitor warm cycle (all 304)"),
        ("monitor_warm_changed", f"monitor warm, {report['changed_share']:.0%} changed"),
        ("monitor_dynamic", f"monitor dynamic bodies, {report['dynamic_share']:.0%} with a new item"),
        ("monitor_cold_about", "monitor cold cycle with about rules"),
        ("monitor_about_drained", "  ... its about queue empty (from the start)"),
        ("monitor_cold_paired", "  ... its pair without about rules"),
        ("raw_http_cold", "raw httpx GET"),
        ("raw_http_warm", "raw httpx conditional GET"),
        ("naive", "naive loop (feedparser.parse(url) + in)"),
        ("parse_only", "feedparser alone on the cold bodies"),
        ("reader_cold", "reader cold update"),
        ("reader_warm", "reader warm update"),
        ("reader_dynamic", "reader update, dynamic bodies"),
        ("pg_one_instance", "1 daemon on PostgreSQL, cold"),
        ("pg_two_instances", "2 daemons on PostgreSQL, cold"),
        ("daemon_cold_round", "daemon on SQLite, cold round"),
    ]
    for key, label in names:
        value = t.get(key)
        if value is not None:
            seen = runs.get(key) or [value]
            span = f"{min(seen):.2f}-{max(seen):.2f}" if len(seen) > 1 else ""
            rows.append((label, _num(value), span, _num(feeds / value if value else None, 1)))
    lines = [_grid(rows), ""]
    rows = [("ratio / figure", "median", "spread (min-max)", "target", "met")]
    spreads = report.get("spreads", {})
    for name, target in report["targets"].items():
        met = {True: "yes", False: "NO", None: "-"}[target["met"]]
        value = target["value"]
        note = (report["notes"].get(name) or "").split("\n", 1)[0][:60]
        shown = "null" if value is None else _num(value) + ("x" if name in report["ratios"] else "")
        spread = "-"
        if spreads.get(name):
            low, high = spreads[name]
            spread = f"{low:.2f}-{high:.2f}" + (" (too wide)" if name in report.get("too_wide", []) else "")
        rows.append((name, f"{shown} ({note})" if note else shown, spread, target["target"], met))
    rows.append(("latency_p50_s", _num(report["latency_p50_s"]), "", "", ""))
    matched = report["details"].get("matching")
    if matched:
        label = f"matching, articles/s ({matched['rules']:,} rules)"
        rows.append((label, _num(matched["articles_per_s"], 0), "", "", ""))
    total = report["peak_rss_total_mb"]
    rows.append(
        ("daemon + parse workers, MB (PSS)", _num(total, 0) if total is not None else "-", "", "", "")
    )
    lines.append(_grid(rows))
    lines.append(
        f"\n{report.get('runs', 1)} runs of each, alternating with their baseline; a ratio is the median of "
        f"the paired runs; spread too wide: more than {report.get('spread_limit', steady.SPREAD_LIMIT):.0%} "
        "of the median."
    )
    return "\n".join(lines)


def _grid(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Measure, print the table, write the JSON; returns the report."""
    for name in list(os.environ):  # everything here is loopback
        if name.lower().endswith("_proxy"):
            del os.environ[name]
    report = Run(args, out).run()
    print("", file=out)
    print(table(report), file=out)
    text = json.dumps(report, indent=2, default=str) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    if args.out.resolve() == RESULTS:
        copy = HERE / "results" / "cycle.json"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=out)
    return report


def main(argv: Sequence[str]) -> int:
    """Command line of this benchmark."""
    run(_parser().parse_args(argv))
    return 0
