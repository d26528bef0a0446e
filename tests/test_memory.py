"""The daemon asks glibc for two malloc arenas, unless the environment says otherwise."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from monitor.memory import limit_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt's M_ARENA_MAX is glibc's")
def test_glibc_takes_the_arena_limit_in_a_fresh_process() -> None:
    code = "from monitor.memory import limit_malloc_arenas; print(limit_malloc_arenas())"
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.strip() == "True", done.stderr


def test_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas() is False
