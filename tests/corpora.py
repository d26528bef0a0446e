"""Where the real-world corpora live (feeds, article pages, stories): read in place.

``$MONITOR_CORPORA`` when set, else ``shared/corpora`` beside the checkout (the
project's ``../shared``). Tests that need them skip with this reason when neither
exists, the way PostgreSQL tests do without a server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / "shared" / "corpora"
CORPORA = Path(os.environ.get("MONITOR_CORPORA") or _BESIDE_CHECKOUT)


def corpus(name: str) -> Path:
    """The folder of one corpus (``feeds``, ``pages``, ``stories``); skip the test if absent."""
    path = CORPORA / name
    if not path.is_dir():
        pytest.skip(f"corpus {name!r} not found at {path} (set MONITOR_CORPORA)")
    return path
