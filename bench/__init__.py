"""Benchmarks (``make bench`` = ``python -m bench``). Timing lives here, never in tests.

Each module of this package with a ``main(argv) -> int`` function is one benchmark,
run by name (``python -m bench matching``) or all in turn; each prints a table and
writes ``bench/results/<name>.json`` (git-ignored).
"""
