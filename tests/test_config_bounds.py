"""A hostile or careless config.yaml cannot take the program's time or memory: alias bombs,
deep nesting, unknown tags, values ruamel cannot build, text that is not characters and
oversized files each stop ``monitor check`` and ``monitor run`` with
``FILE:LINE:COL: message`` and exit 2, before anything is expanded or polled."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config.bounded import MAX_ALIASED, MAX_DEPTH

WriteConfig = Callable[[str], Path]


def laughs(levels: int = 9, width: int = 9) -> str:
    """The YAML "billion laughs": each level a list of ``width`` aliases of the one above."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


ALIAS_BOMB = f"YAML: aliases expand to more than {MAX_ALIASED:,} values; write the values out instead"
TOO_DEEP = f"YAML: nested deeper than {MAX_DEPTH} levels of mappings and lists"
NOT_ACCEPTED = "is not accepted: write plain text, numbers, lists and mappings"
HOSTILE = [
    # (file text, line:column, message)
    pytest.param(laughs(), "6:10", ALIAS_BOMB, id="alias-bomb"),
    pytest.param(
        "rules:\n  - name: r\n    any: &x [a, b]\n    notify: " + "[" * 100 + "*x" + "]" * 100 + "\n",
        "4:74",
        TOO_DEEP,
        id="deep-flow-lists",
    ),
    pytest.param("feeds: " + "[" * 5000 + "]" * 5000 + "\n", "1:71", TOO_DEEP, id="5000-deep-lists"),
    pytest.param("a: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "1:256", TOO_DEEP, id="3000-deep-mappings"),
    pytest.param(
        "".join(" " * i + "k:\n" for i in range(1000)) + " " * 1000 + "v\n",
        "65:65",
        TOO_DEEP,
        id="deep-block",
    ),
    pytest.param(
        "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 100)),
        "64:12",
        f"YAML: this alias nests deeper than {MAX_DEPTH} levels",
        id="aliases-nesting-deep",
    ),
    pytest.param(
        "feeds: &a [*a]\n", "1:12", "YAML: alias *a is inside the anchor it refers to", id="recursive"
    ),
    pytest.param(
        "database: !!python/object/apply:os.system ['echo hi']\n",
        "1:11",
        f"YAML: tag !!python/object/apply:os.system {NOT_ACCEPTED}",
        id="python-object",
    ),
    pytest.param("feeds: !foo []\n", "1:8", f"YAML: tag !foo {NOT_ACCEPTED}", id="local-tag"),
    pytest.param("database: !!binary aGk=\n", "1:11", f"YAML: tag !!binary {NOT_ACCEPTED}", id="binary"),
    pytest.param("feeds: !!set {a}\n", "1:8", f"YAML: tag !!set {NOT_ACCEPTED}", id="set"),
    pytest.param("poll: {concurrency: !!int x}\n", "1:21", f"YAML: tag !!int {NOT_ACCEPTED}", id="int-tag"),
    pytest.param(
        "database: 2024-13-45\n",
        "1:11",
        "YAML: cannot read this value: month must be in 1..12",
        id="bad-date",
    ),
    pytest.param(
        "poll: {concurrency: " + "9" * 5000 + "}\n",
        "1:21",
        "YAML: cannot read this value: Exceeds the limit (4300 digits) for integer string conversion: "
        "value has 5000 digits",
        id="5000-digits",
    ),
    pytest.param(
        'database: "monitor\\0.db"\n',
        "1:11",
        "YAML: this text holds a control character ('\\x00'); remove it",
        id="control-character",
    ),
    pytest.param(
        'feeds: [{name: "\\ud800", url: "https://x.example/"}]\n',
        "1:16",
        "YAML: this text holds a lone surrogate ('\\ud800'); remove it",
        id="lone-surrogate",
    ),
    pytest.param(
        "feeds: []\n" + ("# " + "x" * 100 + "\n") * 21_000,
        "1:1",
        "the file is larger than 2 MiB, the most monitor reads",
        id="over-2-MiB",
    ),
]


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize(("text", "where", "message"), HOSTILE)
def test_hostile_yaml_stops_check_and_run_at_its_place(
    write_config: WriteConfig,
    capsys: pytest.CaptureFixture[str],
    command: str,
    text: str,
    where: str,
    message: str,
) -> None:
    path = write_config(text)
    assert main([command, "-c", str(path)]) == 2
    assert capsys.readouterr().err == f"{path}:{where}: {message}\n"
    assert not (path.parent / "monitor.db").exists()


def test_anchors_aliases_and_merge_keys_within_the_limits_still_work(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        'channels:\n  ops: &ops "json://127.0.0.1:9/x"\n  copy: *ops\n'
        "rules:\n  - &first {name: a, any: &words [ATACMS, HIMARS], notify: &to [ops], exact: true}\n"
        "  - {<<: *first, name: b}\n"
        "  - {name: c, all: *words, notify: *to}\n"
    )
    assert main(["check", "-c", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: OK (0 feeds, 3 rules, 2 channels)\n"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["check", "run"])
def test_the_alias_bomb_is_refused_in_bounded_memory(write_config: WriteConfig, command: str) -> None:
    """In a process that may not grow past 1.5 GiB: expanding the bomb would need tens of
    gigabytes (the old loader reached 750 MB and kept going)."""
    path = write_config(laughs())

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))

    done = subprocess.run(
        [sys.executable, "-m", "monitor", command, "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        check=False,
    )
    assert (done.returncode, done.stderr) == (2, f"{path}:6:10: {ALIAS_BOMB}\n")
