"""config.editor: add and remove feeds in config.yaml, keeping everything else as written."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_settings
from monitor.config.editor import AddResult, NewFeed, add_feeds, one_editor, remove_feed, unique_name
from monitor.errors import ConfigError

WriteConfig = Callable[..., Path]
NEW = [NewFeed("New One", "https://new.example.org/feed", "15m"), NewFeed("A", "https://a2.example.org/")]

ADDS = [
    pytest.param(
        """timezone: UTC
feeds:
  # header comment
  - name: A   # eol
    url: https://a.example.org/
  # commented out:
  # - name: B
  #   url: https://b.example.org/

rules: []  # none
""",
        """timezone: UTC
feeds:
  # header comment
  - name: A   # eol
    url: https://a.example.org/
  - name: New One
    url: https://new.example.org/feed
    interval: 15m
  - name: A (2)
    url: https://a2.example.org/
  # commented out:
  # - name: B
  #   url: https://b.example.org/

rules: []  # none
""",
        id="comments-after-the-last-feed-stay-last",
    ),
    pytest.param(
        """feeds:
  # nothing yet

rules: []
""",
        """feeds:
  - name: New One
    url: https://new.example.org/feed
    interval: 15m
  - name: A
    url: https://a2.example.org/
  # nothing yet

rules: []
""",
        id="empty-feeds-with-a-comment",
    ),
    pytest.param(
        """feeds: []  # none yet

rules: []
""",
        """feeds:     # none yet
  - name: New One
    url: https://new.example.org/feed
    interval: 15m
  - name: A
    url: https://a2.example.org/

rules: []
""",
        id="flow-empty-list",
    ),
    pytest.param(
        """poll:
    interval: 5m
feeds:
- name: "Quoted"
  url: 'https://q.example.org/'
rules: []
""",
        """poll:
    interval: 5m
feeds:
- name: "Quoted"
  url: 'https://q.example.org/'
- name: New One
  url: https://new.example.org/feed
  interval: 15m
- name: A
  url: https://a2.example.org/
rules: []
""",
        id="other-indentation-and-quotes",
    ),
    pytest.param(
        """database: sqlite:///x.db

rules: []
""",
        """database: sqlite:///x.db

feeds:
  - name: New One
    url: https://new.example.org/feed
    interval: 15m
  - name: A
    url: https://a2.example.org/
rules: []
""",
        id="no-feeds-key",
    ),
    pytest.param(
        "",
        """feeds:
  - name: New One
    url: https://new.example.org/feed
    interval: 15m
  - name: A
    url: https://a2.example.org/
""",
        id="empty-file",
    ),
]


@pytest.mark.parametrize(("before", "after"), ADDS)
def test_add_feeds(write_config: WriteConfig, before: str, after: str) -> None:
    path = write_config(before)
    result = add_feeds(path, NEW)
    assert [f.url for f in result.added] == [f.url for f in NEW] and result.present == ()
    assert path.read_text(encoding="utf-8") == after
    load_settings(path)


REMOVES = [
    pytest.param(
        """feeds:
  - name: A
    url: https://a.example.org/
  # about B
  - name: B
    url: https://b.example.org/

rules: []
""",
        "A",
        """feeds:
  # about B
  - name: B
    url: https://b.example.org/

rules: []
""",
        id="first",
    ),
    pytest.param(
        """feeds:
  - name: A
    url: https://a.example.org/  # the A feed
  - name: B
    url: https://b.example.org/
  # more later

rules: []
""",
        "https://b.example.org/",
        """feeds:
  - name: A
    url: https://a.example.org/  # the A feed
  # more later

rules: []
""",
        id="last-by-url",
    ),
    pytest.param(
        """feeds:
  - name: A
    url: https://a.example.org/

rules: []
""",
        "A",
        """feeds: []

rules: []
""",
        id="only",
    ),
]


@pytest.mark.parametrize(("before", "target", "after"), REMOVES)
def test_remove_feed(write_config: WriteConfig, before: str, target: str, after: str) -> None:
    path = write_config(before)
    removed = remove_feed(path, target)
    assert removed is not None and target in (removed.name, removed.url)
    assert path.read_text(encoding="utf-8") == after
    load_settings(path)


def test_remove_prefers_a_name_and_reports_nothing_found(write_config: WriteConfig) -> None:
    path = write_config(
        "feeds:\n  - name: https://b.example.org/\n    url: https://a.example.org/\n"
        "  - name: B\n    url: https://b.example.org/\n"
    )
    removed = remove_feed(path, "https://b.example.org/")
    assert removed is not None and removed.url == "https://a.example.org/"
    assert remove_feed(path, "nope") is None


def test_urls_already_present_are_reported_not_added(write_config: WriteConfig) -> None:
    text = "feeds:\n  - name: A\n    url: https://a.example.org/\n"
    path = write_config(text)
    wanted = [NewFeed("Again", "https://a.example.org/"), NewFeed("Twice", "https://a.example.org/")]
    assert add_feeds(path, wanted) == AddResult(added=(), present=((wanted[0], "A"), (wanted[1], "A")))
    assert path.read_text(encoding="utf-8") == text


def test_duplicates_within_one_batch(write_config: WriteConfig) -> None:
    path = write_config("")
    first, second = NewFeed("X", "https://x.example.org/"), NewFeed("Y", "https://x.example.org/")
    result = add_feeds(path, [first, second])
    assert result.added == (first,) and result.present == ((second, "X"),)


def test_an_invalid_file_is_refused_with_its_position(write_config: WriteConfig) -> None:
    text = "feeds:\n  - name: A\n    url: https://a.example.org/\n    intervall: 5m\n"
    path = write_config(text)
    with pytest.raises(ConfigError) as raised:
        add_feeds(path, NEW)
    assert str(raised.value) == f"{path}:4:5: unknown key 'intervall' (did you mean 'interval'?)"
    with pytest.raises(ConfigError):
        remove_feed(path, "A")
    assert path.read_text(encoding="utf-8") == text


def test_a_result_that_would_not_validate_is_not_written(write_config: WriteConfig) -> None:
    text = "feeds: []\n"
    path = write_config(text)
    with pytest.raises(ConfigError) as raised:
        add_feeds(path, [NewFeed("Bad", "https://ok.example.org/", "never")])
    assert str(raised.value).startswith(f"{path}:4:5: interval: bad duration 'never'")
    assert str(raised.value).endswith("(in the edited text; the file was not changed)")
    assert path.read_text(encoding="utf-8") == text
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]


def test_mode_and_symlink_survive(write_config: WriteConfig, tmp_path: Path) -> None:
    real = write_config("feeds: []\n", "real.yaml")
    os.chmod(real, 0o640)
    link = tmp_path / "config.yaml"
    link.symlink_to(real)
    add_feeds(link, NEW[:1])
    assert link.is_symlink() and "New One" in real.read_text(encoding="utf-8")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("name", "taken", "expected"),
    [("A", set(), "A"), ("A", {"A"}, "A (2)"), ("A", {"A", "A (2)"}, "A (3)")],
)
def test_unique_name(name: str, taken: set[str], expected: str) -> None:
    assert unique_name(name, taken) == expected


def _add_in_turn(path: str, prefix: str, count: int, ready: Any) -> None:
    """A second process: wait for the other, then add ``count`` feeds one edit at a time."""
    ready.wait()
    for i in range(count):
        add_feeds(Path(path), [NewFeed(f"{prefix} {i}", f"https://{prefix}.example.org/{i}")])


def test_two_processes_editing_at_once_lose_no_feed(write_config: WriteConfig) -> None:
    """Two `monitor feeds add` at the same moment: every read-modify-write holds the edit
    lock, so each one reads what the other wrote and both sets of feeds land."""
    path = write_config("feeds: []\n")
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(2)
    others = [context.Process(target=_add_in_turn, args=(str(path), p, 8, ready)) for p in ("left", "right")]
    for process in others:
        process.start()
    for process in others:
        process.join(timeout=120)
        assert process.exitcode == 0
    names = {f.name for f in load_settings(path).feeds}
    assert names == {f"{p} {i}" for p in ("left", "right") for i in range(8)}


def _hold_the_lock(path: str, held: Any) -> None:
    with one_editor(Path(path)):
        held.set()
        threading.Event().wait()  # until killed


def test_a_waiting_edit_gives_up_with_the_file_named_and_a_dead_holder_frees_the_lock(
    write_config: WriteConfig,
) -> None:
    path = write_config("feeds: []\n")
    context = multiprocessing.get_context("spawn")
    held = context.Event()
    holder = context.Process(target=_hold_the_lock, args=(str(path), held))
    holder.start()
    try:
        assert held.wait(timeout=60)
        with pytest.raises(ConfigError) as raised:
            add_feeds(path, NEW[:1], lock_wait=0.2)
        assert (
            str(raised.value)
            == f"{path}:1:1: another edit of this file did not finish within 0.2s; try again"
        )
        assert path.read_text(encoding="utf-8") == "feeds: []\n"
    finally:
        holder.kill()
        holder.join(timeout=60)
    assert add_feeds(path, NEW[:1], lock_wait=5).added == (NEW[0],)  # the kernel let go of it
