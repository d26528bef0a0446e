"""Steady numbers on a noisy machine: every ratio is the median of paired runs.

A benchmark repeats each measurement ``runs`` times, monitor's and its baseline's in
turn (ours, baseline, ours, baseline, ...), so that a slow minute on a shared machine
slows both sides of a pair. ``Runs`` keeps every run's seconds by name; ``ratios``
pairs run ``n`` of the baseline with run ``n`` of monitor and gives the median of those
ratios and their min-max spread. A spread wider than ``limit`` of the median (25 % by
default) is printed as too wide to trust: the machine was too busy to say.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

SPREAD_LIMIT = 0.25


@dataclass
class Runs:
    """Seconds of every run, by measurement name, in the order they ran."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds.setdefault(name, []).append(seconds)

    def median(self, name: str) -> float | None:
        values = self.seconds.get(name)
        return statistics.median(values) if values else None

    def medians(self) -> dict[str, float | None]:
        return {name: self.median(name) for name in self.seconds}

    def paired(self, slow: str, fast: str) -> list[float]:
        """``slow`` over ``fast`` run by run (above 1: the ``fast`` side is faster)."""
        pairs = zip(self.seconds.get(slow, []), self.seconds.get(fast, []), strict=False)
        return [s / f for s, f in pairs if s and f]


@dataclass(frozen=True)
class Ratio:
    """The median of paired ratios, their spread, and how many pairs there were."""

    value: float | None
    spread: tuple[float, float] | None
    runs: int

    @classmethod
    def of(cls, ratios: list[float]) -> Ratio:
        if not ratios:
            return cls(None, None, 0)
        return cls(statistics.median(ratios), (min(ratios), max(ratios)), len(ratios))

    def too_wide(self, limit: float = SPREAD_LIMIT) -> bool:
        """The spread is more than ``limit`` of the median (or there is a single run)."""
        if self.value is None or self.spread is None:
            return False
        low, high = self.spread
        return self.runs < 2 or (high - low) > limit * self.value


def ratios(runs: Runs, pairs: Mapping[str, tuple[str, str]]) -> dict[str, Ratio]:
    """Each named ratio from its (slow, fast) measurement names."""
    return {name: Ratio.of(runs.paired(slow, fast)) for name, (slow, fast) in pairs.items()}


def spread_text(ratio: Ratio, limit: float = SPREAD_LIMIT) -> str:
    """``0.95-1.10`` and, when it is, ``(too wide)``."""
    if ratio.spread is None:
        return "-"
    low, high = ratio.spread
    text = f"{low:.2f}-{high:.2f}"
    return f"{text} (too wide)" if ratio.too_wide(limit) else text
