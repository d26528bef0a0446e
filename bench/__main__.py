"""``python -m bench [NAME ...]``: run the named benchmarks (default: every one).

A benchmark is a module ``bench/NAME.py`` with ``main(argv) -> int``; arguments
after ``--`` go to it (``python -m bench matching -- --quick``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path


def available() -> list[str]:
    """Names of the benchmark modules in this package."""
    here = str(Path(__file__).resolve().parent)
    found = []
    for module in pkgutil.iter_modules([here]):
        if module.name.startswith("_"):
            continue
        if hasattr(importlib.import_module(f"bench.{module.name}"), "main"):
            found.append(module.name)
    return sorted(found)


def main(argv: Sequence[str] | None = None) -> int:
    """Run benchmarks by name; unknown names are an error (exit 2)."""
    args = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, rest = args[:cut], args[cut + 1 :]
    known = available()
    unknown = [name for name in args if name not in known]
    if unknown:
        print(f"bench: unknown benchmark {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    status = 0
    for name in args or known:
        status |= int(importlib.import_module(f"bench.{name}").main(rest))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
