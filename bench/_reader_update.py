"""Runs in reader's own venv (``bench/.venv-reader``), not in monitor's: imports only reader.

``python _reader_update.py --dir DIR --urls FILE --workers N`` prints ``{"version": ...}``,
then answers one command per line of its standard input with one JSON line:

- ``cold``: a new reader database in DIR with every URL added, and a timed
  ``update_feeds`` (every feed new): ``{"seconds", "entries", "broken"}``;
- ``update``: a timed ``update_feeds(scheduled=False)`` of that database (reader sends
  the validators it stored): ``{"seconds", "entries", "broken"}``;
- ``quit`` (or the end of the input): close and exit.

The harness alternates these with monitor's own runs (``bench.baselines.ReaderSession``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from reader import make_reader  # type: ignore[import-not-found]  # only in reader's venv


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--urls", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with open(args.urls, encoding="utf-8") as handle:
        urls = [line.strip() for line in handle if line.strip()]
    print(json.dumps({"version": __import__("reader").__version__, "feeds": len(urls)}), flush=True)
    reader: Any = None
    made = 0
    for line in sys.stdin:
        command = line.strip()
        if command == "cold":
            if reader is not None:
                reader.close()
            made += 1
            reader = make_reader(os.path.join(args.dir, f"reader-{made}.sqlite"))
            for url in urls:
                reader.add_feed(url)
            report = _timed(reader, args.workers, scheduled=True)
        elif command == "update" and reader is not None:
            report = _timed(reader, args.workers, scheduled=False)
        elif command in ("quit", ""):
            break
        else:
            report = {"error": f"unknown command {command!r} (or no database yet)"}
        print(json.dumps(report), flush=True)
    if reader is not None:
        reader.close()


def _timed(reader: Any, workers: int, *, scheduled: bool) -> dict[str, Any]:
    began = time.perf_counter()
    reader.update_feeds(workers=workers, scheduled=scheduled)
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "entries": reader.get_entry_counts().total,
        "broken": reader.get_feed_counts(broken=True).total,
    }


if __name__ == "__main__":
    run()
