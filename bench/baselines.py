"""What monitor is compared with, on the same loopback feeds in the same run.

- ``naive_loop``: ``feedparser.parse(url)`` for each feed in turn, then keyword ``in``
  checks of every rule on every entry (what a first script does).
- ``raw_http``: a bare ``httpx.Client`` GET of every URL from a pool of threads of the
  harness's concurrency; with ``etags`` it is a conditional GET (the floor for a warm
  cycle: no parsing, no database).
- ``parse_only``: feedparser alone parsing the bodies, one after another in one
  process (the floor for a cold cycle that parses serially).
- ``reader``: the ``reader`` library (lemon24/reader) updating the same feeds, run in
  its own virtual environment (``bench/.venv-reader``, made on first use with
  ``python -m venv`` and ``pip install reader==3.* sgmllib3k``) by ``bench/_reader_update.py``,
  which stays up and answers ``cold``/``update`` commands with its timings as JSON
  (``ReaderSession``), so its runs alternate with monitor's.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import feedparser
import httpx

from bench.feeds_server import clean_env
from bench.news import Keywords

HERE = Path(__file__).resolve().parent
READER_VENV = HERE / ".venv-reader"
# reader vendors a feedparser that imports ``sgmllib``; the feedparser it depends on may
# bring ``feedparser_sgmllib`` instead (6.0.14 does), so sgmllib3k is named too.
READER_REQUIREMENTS = ("reader==3.*", "sgmllib3k")


@dataclass
class Naive:
    seconds: float
    feeds: int
    entries: int
    hits: int
    errors: int


def naive_loop(urls: Sequence[str], keywords: Sequence[Keywords]) -> Naive:
    """feedparser fetches and parses each URL in turn; each rule's keywords are looked
    for in each entry's lower-cased title and summary."""
    began = time.perf_counter()
    entries = hits = errors = 0
    for url in urls:
        parsed = feedparser.parse(url)
        if parsed.get("status") != 200:
            errors += 1
        for entry in parsed.entries:
            text = f"{entry.get('title', '')}\n{entry.get('summary', '')}".lower()
            entries += 1
            hits += any(k.hit(text) for k in keywords)
    return Naive(time.perf_counter() - began, len(urls), entries, hits, errors)


@dataclass
class RawPass:
    seconds: float
    statuses: dict[int, int]
    bodies: dict[str, bytes] = field(repr=False)
    etags: dict[str, str] = field(repr=False)


class RawHttp:
    """One httpx.Client shared by ``concurrency`` threads (kept between passes, as
    monitor keeps its client between cycles)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.Client(limits=limits, timeout=60, trust_env=False)

    def run(self, urls: Sequence[str], etags: dict[str, str] | None = None) -> RawPass:
        """GET every URL (conditional when ``etags`` has its ETag)."""

        def get(url: str) -> tuple[str, int, bytes, str | None]:
            tag = (etags or {}).get(url)
            response = self.client.get(url, headers={"If-None-Match": tag} if tag else None)
            return url, response.status_code, response.content, response.headers.get("ETag")

        began = time.perf_counter()
        with ThreadPoolExecutor(self.concurrency) as pool:
            results = list(pool.map(get, urls))
        seconds = time.perf_counter() - began
        statuses: dict[int, int] = {}
        for _, status, _, _ in results:
            statuses[status] = statuses.get(status, 0) + 1
        bodies = {url: body for url, status, body, _ in results if status == 200}
        tags = {url: tag for url, _, _, tag in results if tag}
        return RawPass(seconds, statuses, bodies, tags)

    def close(self) -> None:
        self.client.close()


def parse_only(bodies: Sequence[bytes]) -> tuple[float, int]:
    """Seconds feedparser needs to parse ``bodies`` one after another; entries found."""
    began = time.perf_counter()
    entries = sum(len(feedparser.parse(io.BytesIO(body)).entries) for body in bodies)
    return time.perf_counter() - began, entries


def reader_python(log: Any = None) -> tuple[Path | None, str | None]:
    """The reader venv's interpreter, made if missing: (path, None) or (None, why not)."""
    python = READER_VENV / "bin" / "python"
    if python.exists() and _has_reader(python):
        return python, None
    try:
        if not python.exists():
            print(f"  making {READER_VENV} (python -m venv) ...", file=log or sys.stdout, flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(READER_VENV)], check=True, capture_output=True)
        print(
            f"  pip install {' '.join(READER_REQUIREMENTS)} into it ...", file=log or sys.stdout, flush=True
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *READER_REQUIREMENTS],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or "").strip().splitlines()[-1:] or [str(e)]
        return None, f"could not install {READER_REQUIREMENTS[0]} into {READER_VENV}: {tail[0]}"
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"could not make {READER_VENV}: {e}"
    return (python, None) if _has_reader(python) else (None, "reader does not import in its venv")


def _has_reader(python: Path) -> bool:
    probe = subprocess.run([str(python), "-c", "import reader, sgmllib"], capture_output=True)
    return probe.returncode == 0


class ReaderSession:
    """``_reader_update.py`` running in reader's venv, answering ``cold`` and ``update``
    commands, so that its runs alternate with monitor's in one benchmark."""

    def __init__(self, python: Path, urls: Sequence[str], workers: int) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-reader-")
        listing = Path(self._tmp.name) / "urls.txt"
        listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
        command = [str(python), str(HERE / "_reader_update.py"), "--dir", self._tmp.name]
        command += ["--urls", str(listing), "--workers", str(workers)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=clean_env()
        )
        hello = self._answer()
        self.version: str = hello["version"]

    def cold(self) -> dict[str, Any]:
        """A new reader database, every feed added and updated once (every entry new)."""
        return self._command("cold")

    def update(self) -> dict[str, Any]:
        """Update every feed of the current database again."""
        return self._command("update")

    def _command(self, name: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        if "error" in answer:
            raise RuntimeError(f"reader: {answer['error']}")
        return answer

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise RuntimeError(f"reader run failed (exit code {self.proc.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._tmp.cleanup()
