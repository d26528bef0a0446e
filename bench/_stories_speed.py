"""Throughput of story assignment with a full index, on synthetic corpus-like news.

Synthetic, deterministic (fixed seed): stories of 4 articles on average; each story
has 2-4 people and 1-2 places drawn from a pool of 40,000 made-up names (so names
recur across stories, as real ones do), 8 topic words from the long tail of real
English (wordfreq's top list, ranks 3,000-20,000) and a few numbers; articles are a
title and about 350 words of sentences that mix common English words (Zipf-weighted)
with the story's names (capitalised, as in print), words and numbers, all published
within one week. The index is filled with ``n`` articles through the real assigner,
then 5,000 more are timed: articles per second of this process's CPU time (one core,
whatever else the machine runs), and per wall-clock second beside it.
Memory is the deep size of the MemoryIndex's objects (shared objects counted once).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

import wordfreq
from sqlalchemy import func, select

from monitor.folding import story_article
from monitor.models import Entry, Match, Snippet
from monitor.store import PollResult, Store
from monitor.store.stories import StoryPlan
from monitor.store.tables import STORIES, STORY_TERMS
from monitor.stories import MemoryIndex, StoryArticle, StoryAssigner, WordfreqStats
from monitor.stories.assign import DEFAULT_CANDIDATES

SEED = 20240531
_SYLLABLES = [c + v for c in "bdfghklmnprstvz" for v in ("a", "e", "i", "o", "u", "ia", "ou")]


def _names(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).title() for _ in range(n)]


def articles(n: int, seed: int = SEED) -> Iterator[StoryArticle]:
    """``n`` synthetic articles, generated lazily (see the module docstring)."""
    rng = random.Random(seed)
    top = wordfreq.top_n_list("en", 20_000)
    common, tail = top[:3000], top[3000:]
    cum = list(accumulate(1.0 / (r + 1) for r in range(len(common))))
    pool = _names(rng, 40_000)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    made = 0
    while made < n:
        people = [f"{rng.choice(pool)} {rng.choice(pool)}" for _ in range(rng.randint(2, 4))]
        places = rng.sample(pool, rng.randint(1, 2))
        topic = rng.sample(tail, 8)
        numbers = [str(rng.randint(2, 500)) for _ in range(3)]
        for _ in range(min(n - made, rng.randint(1, 7))):
            parts = people + places + topic + numbers
            title = " ".join([rng.choice(people), *rng.sample(topic, 3), rng.choice(places)])
            sentences = []
            for _ in range(18):
                words = rng.choices(common, cum_weights=cum, k=rng.randint(10, 20))
                for _ in range(3):
                    words.insert(rng.randrange(1, len(words)), rng.choice(parts))
                sentence = " ".join(words)  # str.capitalize would lower-case the names
                sentences.append(sentence[:1].upper() + sentence[1:] + ".")
            published = start + timedelta(seconds=made * 6)
            yield StoryArticle(f"s{made}", title, " ".join(sentences), published, f"outlet{made % 300}", "en")
            made += 1


def deep_size(root: object) -> int:
    """Bytes held by ``root`` and everything it refers to (each object once)."""
    seen: set[int] = set()
    stack: list[Any] = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s))
        elif hasattr(obj, "__dict__"):
            stack.append(vars(obj))
    return total


def throughput(n: int, timed: int = 5_000) -> dict[str, Any]:
    """Fill an index with ``n`` articles, then time ``timed`` more; sizes and rates."""
    index = MemoryIndex()
    assigner = StoryAssigner(index, WordfreqStats())
    stream = articles(n + timed)
    began = time.perf_counter()
    for _ in range(n):
        assigner.assign(next(stream))
    fill_s = time.perf_counter() - began
    rest = list(stream)
    wall, cpu = time.perf_counter(), time.process_time()
    for article in rest:
        assigner.assign(article)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "indexed": n,
        "stories": len(index),
        "fill_s": round(fill_s, 2),
        "timed": len(rest),
        "assign_cpu_s": round(cpu, 3),
        "assign_wall_s": round(wall, 3),
        "assign_per_s": len(rest) / cpu if cpu else 0.0,
        "assign_per_wall_s": len(rest) / wall if wall else 0.0,
        "index_mib": deep_size(index) / 2**20,
        "max_candidates": DEFAULT_CANDIDATES,
    }


def store_throughput(n: int, timed: int = 1_000) -> dict[str, Any]:
    """The story step as the daemon runs it: ``Store.save_poll`` on a SQLite file, 20
    articles a poll, every one matched by a rule that folds by story, so each poll
    assigns its articles inside its transaction (``SqlStoryIndex``). Fill with ``n``,
    then time ``timed`` more; the rate is this process's CPU per article, and includes
    storing the articles and their matches (a few per cent of it)."""
    stats = WordfreqStats()
    now = datetime(2024, 5, 8, tzinfo=UTC)
    per_poll = 20

    def polls(store: Store, batch: list[StoryArticle]) -> None:
        feeds = store.feeds()
        for start in range(0, len(batch), per_poll):
            chunk = batch[start : start + per_poll]
            entries = [
                Entry(
                    a.key,
                    a.title,
                    f"https://news.example/{a.key}",
                    None,
                    a.published or now,
                    "",
                    a.text,
                    "",
                    "",
                )
                for a in chunk
            ]
            feed = feeds[(start // per_poll) % len(feeds)]
            matched = {e.key: [Match("r", "title", ("x",), Snippet(e.title[:40]))] for e in entries}
            plan = StoryPlan(
                {e.key: story_article(e, feed.name, "en") for e in entries}, frozenset({"r"}), stats=stats
            )
            store.save_poll(
                feed.id, PollResult(None, None, None), entries, matched, {"r": ["c"]}, now, now, stories=plan
            )

    with tempfile.TemporaryDirectory() as work:
        store = Store.open(f"sqlite:///{work}/stories.db")
        try:
            store.sync_feeds([(f"outlet {i}", f"https://news.example/{i}/feed") for i in range(200)], now)
            stream = list(articles(n + timed))
            began = time.perf_counter()
            polls(store, stream[:n])
            fill_s = time.perf_counter() - began
            cpu = time.process_time()
            polls(store, stream[n:])
            cpu = time.process_time() - cpu
            with store.engine.connect() as conn:
                stories = conn.execute(select(func.count()).select_from(STORIES)).scalar_one()
                postings = conn.execute(select(func.count()).select_from(STORY_TERMS)).scalar_one()
        finally:
            store.close()
    return {
        "indexed": n,
        "stories": int(stories),
        "postings": int(postings),
        "fill_s": round(fill_s, 1),
        "timed": timed,
        "assign_cpu_s": round(cpu, 3),
        "assign_per_s": timed / cpu if cpu else 0.0,
    }
