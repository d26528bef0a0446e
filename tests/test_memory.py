"""The daemon asks glibc for two malloc arenas, unless the environment says otherwise;
its workers do not carry the command line."""

from __future__ import annotations

import platform
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from monitor.memory import limit_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not GLIBC, reason="mallopt's M_ARENA_MAX is glibc's")
def test_glibc_takes_the_arena_limit_in_a_fresh_process() -> None:
    code = "from monitor.memory import limit_malloc_arenas; print(limit_malloc_arenas())"
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.strip() == "True", done.stderr


def test_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas() is False


def test_the_console_script_imports_no_command_line_until_it_runs() -> None:
    """Parse and page workers are forked from a server that imports the main module
    first; for the ``monitor`` script that is pip's launcher, which imports its entry
    point at the top. That import must stay light (measured: the daemon's workers
    dropped from 195 to 56 MB PSS in all), and the script must still run the CLI."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["monitor"] == "monitor.entry:main"
    heavy = ("monitor.cli", "pydantic", "sqlalchemy", "apprise")
    code = f"import sys, monitor.entry; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from monitor.entry import main; sys.argv = ['m', '--version']; sys.exit(main())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0 and ran.stdout.strip().startswith("monitor "), ran.stderr
