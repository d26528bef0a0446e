"""Runs in reader's own venv (``bench/.venv-reader``), not in monitor's: imports only reader.

``python _reader_update.py --db PATH --urls FILE --workers N`` adds every URL to a new
reader database, times a cold ``update_feeds`` (every feed new) and a warm one (again
at once, nothing changed: reader sends the validators it stored), and prints one JSON
line with the seconds, entries stored and feeds whose update failed.
"""

from __future__ import annotations

import argparse
import json
import time

from reader import make_reader  # type: ignore[import-not-found]  # only in reader's venv


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--urls", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with open(args.urls, encoding="utf-8") as handle:
        urls = [line.strip() for line in handle if line.strip()]
    reader = make_reader(args.db)
    for url in urls:
        reader.add_feed(url)
    began = time.perf_counter()
    reader.update_feeds(workers=args.workers)
    cold = time.perf_counter() - began
    entries = reader.get_entry_counts().total
    broken = reader.get_feed_counts(broken=True).total
    began = time.perf_counter()
    reader.update_feeds(workers=args.workers, scheduled=False)
    warm = time.perf_counter() - began
    reader.close()
    report = {
        "version": __import__("reader").__version__,
        "feeds": len(urls),
        "workers": args.workers,
        "cold_s": cold,
        "warm_s": warm,
        "entries": entries,
        "broken": broken,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    run()
