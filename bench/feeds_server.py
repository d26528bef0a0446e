"""A loopback news site for the cycle benchmark, in its own process.

``python -m bench.feeds_server --feeds 1000 --items 50 --seed 1 --latency 0.15`` builds
every feed (``bench.news``) up front, then serves them with asyncio until its standard
input closes (so it never outlives the harness). It prints one JSON line when ready:
``{"port": ..., "urls": [...]}``.

- Feed ``i`` is ``http://127.0.1.H:PORT/feeds/i.xml``: the feeds are spread over
  ``--hosts`` loopback addresses (default up to 200), as real feeds are spread over many
  publishers, so a client's per-host politeness limit is not what the benchmark
  measures. Every address listens on the same port.
- Each response waits ``--latency`` seconds before its first byte (``asyncio.sleep``:
  other responses go on meanwhile), because the real web is not loopback.
- ``ETag`` and ``Last-Modified`` are sent and honoured (304); bodies are gzipped
  (compressed once per version) when the client accepts it. HTTP/1.1 keep-alive.
- Control, on ``127.0.0.1:PORT`` and never delayed: ``POST /control/change``
  ``{"share": 0.1, "items": 3}`` prepends new items to that share of the feeds (chosen
  from the seed and the round); ``POST /control/publish`` ``{"feed": i, "token": t}``
  prepends an item the latency rule matches and answers ``{"at": unix time}`` of the
  moment it became visible; ``GET /control/stats`` and ``POST /control/reset`` count
  requests, 200s, 304s and bytes; ``POST /control/dynamic`` ``{"on": true}`` serves as
  many real servers do: no validators, and a body that changes on every request (its
  ``lastBuildDate`` and a "served at" comment) while its items stay.

- With ``--pages``, each item's link is ``/pages/...html`` on the feed's own address (a
  relative link) and the server answers it with an article page (``news.render_page``),
  delayed like a feed, for cycles with ``full_text: always``.

``FeedServer`` is the harness's handle on that process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

from bench import news

MAX_HOSTS = 200
ROOT = Path(__file__).resolve().parent.parent  # the checkout: ``python -m bench...`` runs here


def host_of(feed: int, hosts: int) -> str:
    """The loopback address serving feed ``feed`` (127.0.1.1 to 127.0.1.200)."""
    return f"127.0.1.{1 + feed % hosts}"


@dataclass
class Version:
    """What the server answers for one feed now."""

    body: bytes
    gzipped: bytes
    etag: str
    modified: datetime
    last_modified: str


@dataclass
class Site:
    """Every feed's items and current version; counters for the harness."""

    world: news.NewsWorld
    keep: int
    histories: list[news.FeedHistory]
    pages: bool = False  # links go to article pages served here (``/pages/...``)
    versions: list[Version] = field(default_factory=list)
    articles: dict[str, tuple[int, news.Item]] = field(default_factory=dict)
    rounds: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    dynamic: bool = False  # no validators, a new timestamp in every body (``POST /control/dynamic``)

    @classmethod
    def build(cls, feeds: int, items: int, seed: int, pages: bool = False) -> Site:
        world = news.NewsWorld.make(seed)
        now = datetime.now(UTC)
        site = cls(world, items, [news.initial_feed(world, f, items, now) for f in range(feeds)], pages=pages)
        site.versions = [site.render(f, now) for f in range(feeds)]
        site.reset()
        return site

    def render(self, feed: int, now: datetime) -> Version:
        history = self.histories[feed]
        body = news.render_feed(feed, history.items, now, pages=self.pages)
        if self.pages:
            self.articles.update((i.page_path, (feed, i)) for i in history.items)
        stamp = now.replace(microsecond=0)
        return Version(
            body=body,
            gzipped=gzip.compress(body, 6, mtime=0),
            etag=f'"f{feed}-s{history.serial}"',
            modified=stamp,
            last_modified=format_datetime(stamp, usegmt=True),
        )

    def reset(self) -> None:
        self.stats = {"requests": 0, "ok": 0, "not_modified": 0, "bytes": 0, "first": None, "last": None}

    def change(self, share: float, items: int) -> list[int]:
        """Prepend ``items`` new items to ``share`` of the feeds; returns which."""
        self.rounds += 1
        rng = random.Random(f"{self.world.seed}:change:{self.rounds}")
        count = max(1, round(share * len(self.histories))) if share > 0 else 0
        chosen = sorted(rng.sample(range(len(self.histories)), count))
        now = datetime.now(UTC)
        for feed in chosen:
            news.add_items(self.world, self.histories[feed], items, now, self.keep)
            self.versions[feed] = self.render(feed, now)
        return chosen

    def publish(self, feed: int, token: str) -> float:
        """Prepend an item the latency rule matches; the Unix time it became visible."""
        now = datetime.now(UTC)
        history = self.histories[feed]
        history.items.insert(0, news.marked_item(history, token, now))
        del history.items[self.keep :]
        self.versions[feed] = self.render(feed, now)
        return time.time()

    def answer(self, feed: int, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for a GET of feed ``feed``."""
        version = self.versions[feed]
        if self.dynamic:
            return _dynamic(version, headers)
        validators = [("ETag", version.etag), ("Last-Modified", version.last_modified)]
        if _not_modified(version, headers):
            return 304, validators, b""
        body = version.body
        extra = [("Content-Type", "application/rss+xml; charset=utf-8")]
        if "gzip" in headers.get("accept-encoding", ""):
            body = version.gzipped
            extra.append(("Content-Encoding", "gzip"))
        return 200, validators + extra, body


_BUILD_DATE = re.compile(rb"<lastBuildDate>[^<]*</lastBuildDate>")


def _dynamic(version: Version, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """What a server without validators sends: the body with this moment's build date and
    a "served at" comment (so every body differs), gzipped per request (level 1)."""
    now = datetime.now(UTC)
    stamp = f"<lastBuildDate>{format_datetime(now, usegmt=True)}</lastBuildDate>"
    stamp += f"<!-- served at {now.isoformat(timespec='microseconds')} -->"
    body = _BUILD_DATE.sub(stamp.encode(), version.body, count=1)
    extra = [("Content-Type", "application/rss+xml; charset=utf-8")]
    if "gzip" in headers.get("accept-encoding", ""):
        body = gzip.compress(body, 1, mtime=0)
        extra.append(("Content-Encoding", "gzip"))
    return 200, extra, body


def _not_modified(version: Version, headers: dict[str, str]) -> bool:
    match = headers.get("if-none-match")
    if match is not None:
        return version.etag in [tag.strip().removeprefix("W/") for tag in match.split(",")]
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return version.modified <= when


_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found"}


class Server:
    """The asyncio HTTP/1.1 server over a Site."""

    def __init__(self, site: Site, latency: float) -> None:
        self.site = site
        self.latency = latency

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = [*lines[0].split(" "), "", "", ""][:3]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                payload = await reader.readexactly(length) if length else b""
                status, extra, body = await self.respond(method, target, headers, payload)
                close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
                out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", f"Content-Length: {len(body)}"]
                out += [f"{k}: {v}" for k, v in extra]
                if close:
                    out.append("Connection: close")
                writer.write(
                    ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + (b"" if method == "HEAD" else body)
                )
                await writer.drain()
                if close:
                    return
        except ConnectionError:
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def respond(
        self, method: str, target: str, headers: dict[str, str], payload: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        path = target.split("?", 1)[0]
        if path.startswith("/feeds/") and path.endswith(".xml"):
            number = path[len("/feeds/") : -len(".xml")]
            if not number.isdigit() or int(number) >= len(self.site.versions):
                return 404, [], b"no such feed"
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            status, extra, body = self.site.answer(int(number), headers)
            stats = self.site.stats
            now = time.time()
            stats["requests"] += 1
            stats["ok" if status == 200 else "not_modified"] += 1
            stats["bytes"] += len(body)
            stats["first"] = stats["first"] or now
            stats["last"] = now
            return status, extra, body
        if path in self.site.articles:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            feed, item = self.site.articles[path]
            return (
                200,
                [("Content-Type", "text/html; charset=utf-8")],
                news.render_page(self.site.world, feed, item),
            )
        if path.startswith("/control/"):
            return self.control(method, path[len("/control/") :], payload)
        return 404, [], b"not found"

    def control(self, method: str, action: str, payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        args = json.loads(payload or b"{}")
        answer: Any
        if action == "stats":
            answer = self.site.stats
        elif action == "reset" and method == "POST":
            self.site.reset()
            answer = {}
        elif action == "change" and method == "POST":
            answer = {"changed": self.site.change(float(args["share"]), int(args.get("items", 3)))}
        elif action == "dynamic" and method == "POST":
            self.site.dynamic = bool(args["on"])
            answer = {"dynamic": self.site.dynamic}
        elif action == "publish" and method == "POST":
            answer = {"at": self.site.publish(int(args["feed"]), str(args["token"]))}
        else:
            return 404, [], b"unknown control"
        return 200, [("Content-Type", "application/json")], json.dumps(answer).encode()


def _listeners(hosts: Sequence[str]) -> list[socket.socket]:
    """One listening socket per address, all on one free port (retried on a clash)."""
    for _ in range(20):
        first = socket.create_server(("127.0.0.1", 0), backlog=4096)
        port = first.getsockname()[1]
        made = [first]
        try:
            made += [socket.create_server((h, port), backlog=4096) for h in hosts]
        except OSError:
            for s in made:
                s.close()
            continue
        return made
    raise OSError("no free port shared by every loopback address")


async def _serve(site: Site, latency: float, hosts: int, stop: asyncio.Event) -> None:
    server = Server(site, latency)
    addresses = sorted({host_of(f, hosts) for f in range(len(site.versions))})
    sockets = _listeners(addresses)
    port = sockets[0].getsockname()[1]
    servers = [await asyncio.start_server(server.handle, sock=s, limit=1 << 20) for s in sockets]
    urls = [f"http://{host_of(f, hosts)}:{port}/feeds/{f}.xml" for f in range(len(site.versions))]
    sys.stdout.write(json.dumps({"port": port, "urls": urls}) + "\n")
    sys.stdout.flush()
    await stop.wait()
    for s in servers:
        s.close()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:  # connections kept alive by clients
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_server(argv: Sequence[str] | None = None) -> int:
    """The server process's command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.feeds_server")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds before each feed response")
    parser.add_argument(
        "--hosts", type=int, default=MAX_HOSTS, help="loopback addresses to spread feeds over"
    )
    parser.add_argument("--pages", action="store_true", help="item links lead to article pages served here")
    args = parser.parse_args(argv)
    site = Site.build(args.feeds, args.items, args.seed, pages=args.pages)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def watch_stdin() -> None:  # the harness closes our stdin (or dies): stop
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.run_until_complete(_serve(site, args.latency, max(1, min(args.hosts, MAX_HOSTS)), stop))
    return 0


class FeedServer:
    """The harness's handle: starts the server process and drives its control API."""

    def __init__(
        self,
        *,
        feeds: int,
        items: int,
        seed: int,
        latency: float,
        hosts: int = MAX_HOSTS,
        pages: bool = False,
    ) -> None:
        command = [sys.executable, "-m", "bench.feeds_server", "--feeds", str(feeds), "--items", str(items)]
        command += ["--seed", str(seed), "--latency", str(latency), "--hosts", str(hosts)]
        command += ["--pages"] if pages else []
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=clean_env(), cwd=ROOT
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"feed server did not start (exit code {self.proc.returncode})")
        ready = json.loads(line)
        self.port: int = ready["port"]
        self.urls: list[str] = ready["urls"]
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, action: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/control/{action}", data=data)
        with self._opener.open(request, timeout=60) as response:
            return json.loads(response.read())

    def change(self, share: float, items: int = 3) -> list[int]:
        return list(self._call("change", {"share": share, "items": items})["changed"])

    def publish(self, feed: int, token: str) -> float:
        return float(self._call("publish", {"feed": feed, "token": token})["at"])

    def dynamic(self, on: bool) -> None:
        """Serve like a server without validators whose body changes on every request."""
        self._call("dynamic", {"on": on})

    def stats(self) -> dict[str, Any]:
        return dict(self._call("stats"))

    def reset(self) -> None:
        self._call("reset", {})

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without proxy settings (everything here is loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


if __name__ == "__main__":
    raise SystemExit(run_server())
