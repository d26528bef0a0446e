"""Where the real-world corpora live: ``$MONITOR_CORPORA``, else ``shared/corpora``
beside the checkout (the project's ``../shared``). Read in place, never copied."""

from __future__ import annotations

import os
from pathlib import Path

_BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / "shared" / "corpora"
CORPORA = Path(os.environ.get("MONITOR_CORPORA") or _BESIDE_CHECKOUT)


def corpus(name: str) -> Path:
    """The folder of one corpus; SystemExit with a clear message when it is missing."""
    path = CORPORA / name
    if not path.is_dir():
        raise SystemExit(f"bench: corpus {name!r} not found at {path} (set MONITOR_CORPORA)")
    return path
