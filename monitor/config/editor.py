"""Edit the ``feeds:`` list of config.yaml in place, keeping what a person wrote.

ruamel.yaml's round-trip mode keeps comments, key order and quoting; the indentation
of the file is measured and reused, so untouched lines come back byte for byte. The
edit is refused when the file does not validate now (a person is half-way through a
change), and the new text must validate before it replaces the old one, atomically.
One edit at a time: each read-modify-write holds an exclusive lock on the file's
directory (``flock``), so two ``monitor feeds add`` run at once both land; the kernel
drops the lock with its process, and a waiter gives up after ``LOCK_WAIT`` seconds.

ruamel attaches the lines that follow a value (blank lines, comments) to that value.
When a feed is appended after the last one, or the last one is removed, those lines
move with the end of the list, so the blank line before ``rules:`` stays where it was.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import io
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from monitor.config.bounded import bounded_yaml, read_text
from monitor.config.loader import UrlCheck, load_settings
from monitor.config.schema import FeedSpec, Settings
from monitor.errors import ConfigError, ConfigProblem

LOCK_WAIT = 30.0  # seconds an edit waits for another one to finish
_LOCK_RETRY = 0.05


@dataclass(frozen=True, slots=True)
class NewFeed:
    """A feed to write into config.yaml; ``interval`` as the user wrote it (``15m``)."""

    name: str
    url: str
    interval: str | None = None


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``add_feeds`` did: feeds written (with their final names), and URLs skipped."""

    added: tuple[NewFeed, ...]
    present: tuple[tuple[NewFeed, str], ...]
    """(feed asked for, name it is already watched under)"""


def add_feeds(
    path: Path, feeds: Sequence[NewFeed], *, check_url: UrlCheck | None = None, lock_wait: float = LOCK_WAIT
) -> AddResult:
    """Append feeds whose URL is not in the file yet; names are made unique (``Name (2)``)."""
    with one_editor(path, lock_wait):
        return _add_feeds(path, feeds, check_url)


def _add_feeds(path: Path, feeds: Sequence[NewFeed], check_url: UrlCheck | None) -> AddResult:
    settings = current_settings(path, check_url)
    by_url = {f.url: f.name for f in settings.feeds}
    names = {f.name for f in settings.feeds}
    added: list[NewFeed] = []
    present: list[tuple[NewFeed, str]] = []
    for feed in feeds:
        if feed.url in by_url:
            present.append((feed, by_url[feed.url]))
            continue
        final = replace(feed, name=unique_name(feed.name, names))
        names.add(final.name)
        by_url[final.url] = final.name
        added.append(final)
    if added:
        yaml, tree = _load(path)
        seq, trailing = _feeds_sequence(tree)
        for feed in added:
            _append(seq, _item(feed))
        if trailing is not None:
            _add_trailing(seq[-1], trailing)
        _write(path, yaml, tree, check_url)
    return AddResult(added=tuple(added), present=tuple(present))


def remove_feed(
    path: Path, name_or_url: str, *, check_url: UrlCheck | None = None, lock_wait: float = LOCK_WAIT
) -> FeedSpec | None:
    """Remove the feed with this name (else this URL); None when there is none."""
    with one_editor(path, lock_wait):
        return _remove_feed(path, name_or_url, check_url)


def _remove_feed(path: Path, name_or_url: str, check_url: UrlCheck | None) -> FeedSpec | None:
    settings = current_settings(path, check_url)
    index = next((i for i, f in enumerate(settings.feeds) if f.name == name_or_url), None)
    if index is None:
        index = next((i for i, f in enumerate(settings.feeds) if f.url == name_or_url), None)
    if index is None:
        return None
    yaml, tree = _load(path)
    _remove(tree, index)
    _write(path, yaml, tree, check_url)
    return settings.feeds[index]


@contextlib.contextmanager
def one_editor(path: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the exclusive edit lock of ``path`` (on its directory: the file itself is
    replaced by every edit, so a lock on it would lock a file nobody opens next).

    ConfigError at the file when another edit holds it for longer than ``wait`` seconds.
    """
    folder = Path(os.path.realpath(path)).parent
    fd = os.open(folder, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    message = f"another edit of this file did not finish within {wait:g}s; try again"
                    raise ConfigError([ConfigProblem(str(path), 1, 1, message)]) from None
                time.sleep(_LOCK_RETRY)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def current_settings(path: Path, check_url: UrlCheck | None) -> Settings:
    """The file as it is now; a ConfigError (path:line:col) when it does not validate.

    ``${VAR}`` references need not resolve: editing feeds sends nothing.
    """
    return load_settings(path, check_url=check_url, require_env=False)


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``... whichever is free."""
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


# -- reading and writing ----------------------------------------------------------


def _load(path: Path) -> tuple[YAML, CommentedMap]:
    """The round-trip tree (already known to be a mapping) and a YAML set up like the file."""
    yaml = bounded_yaml()  # the file was just validated, but it may have changed since
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    yaml.representer.add_representer(type(None), _null_as_written)
    tree = yaml.load(read_text(path))  # at most 2 MiB, like every read of the config
    if tree is None:
        tree = CommentedMap()
    mapping, sequence, offset = _indentation(tree)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml, tree


def _null_as_written(representer: Any, _data: None) -> Any:
    """Keep ``key: null`` as ``null`` (ruamel would write an empty value)."""
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _indentation(tree: CommentedMap) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file uses them.

    Defaults to the shipped config.yaml's style: ``key:`` then ``  - name:``.
    """
    mapping, sequence, offset = 2, 4, 2
    for key in tree:
        value = tree[key]
        col = tree.lc.key(key)[1]
        if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
            mapping = value.lc.key(next(iter(value)))[1] - col
            break
    for key in tree:
        value = tree[key]
        col = tree.lc.key(key)[1]
        if isinstance(value, CommentedSeq) and value and not value.fa.flow_style():
            offset = max(value.lc.col - col, 0)
            sequence = max(value.lc.item(0)[1] - col, offset + 2)
            break
    return max(mapping, 1), sequence, offset


def _write(path: Path, yaml: YAML, tree: CommentedMap, check_url: UrlCheck | None) -> None:
    """Write next to the file, validate the result, then replace the file atomically."""
    buffer = io.StringIO()
    yaml.dump(tree, buffer)
    target = Path(os.path.realpath(path))  # keep a symlinked config a symlink
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        _copy_mode(target, temp)
        try:
            current_settings(temp, check_url)
        except ConfigError as e:
            note = " (in the edited text; the file was not changed)"
            problems = [replace(p, path=str(path), message=p.message + note) for p in e.problems]
            raise ConfigError(problems) from None
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _copy_mode(source: Path, dest: Path) -> None:
    with contextlib.suppress(OSError):  # best effort: else mkstemp's private 0600 stays
        os.chmod(dest, source.stat().st_mode & 0o7777)


# -- the feeds sequence ----------------------------------------------------------------


def _feeds_sequence(tree: CommentedMap) -> tuple[CommentedSeq, _Token | None]:
    """The block sequence under ``feeds:``, created (before ``rules:``) when missing or empty.

    For ``feeds: []``, also the lines that followed it, which belong after the new items.
    """
    seq = tree.get("feeds")
    if isinstance(seq, CommentedSeq):
        trailing = _split_comment(tree, seq) if not seq else None
        seq.fa.set_block_style()
        return seq, trailing
    seq = CommentedSeq()
    if "feeds" in tree:
        tree["feeds"] = seq
    else:
        keys = list(tree)
        tree.insert(keys.index("rules") if "rules" in keys else len(keys), "feeds", seq)
    return seq, None


def _split_comment(tree: CommentedMap, seq: CommentedSeq) -> _Token | None:
    """Detach the lines after ``feeds: []  # comment``, keeping the comment on its line."""
    slots = tree.ca.items.get("feeds")
    holders = [slots[2] if slots and len(slots) > 2 else None, seq.ca.comment[0] if seq.ca.comment else None]
    trailing = None
    for token in {id(t): t for t in holders if t is not None}.values():
        eol, newline, rest = token.value.partition("\n")
        if rest:
            trailing = copy.copy(token)
            trailing.value = "\n" + rest
            token.value = eol + newline
    return trailing


def _item(feed: NewFeed) -> CommentedMap:
    item = CommentedMap()
    item["name"] = feed.name
    item["url"] = feed.url
    if feed.interval:
        item["interval"] = feed.interval
    return item


def _append(seq: CommentedSeq, item: CommentedMap) -> None:
    """Append; the lines that followed the old last item now follow the new one."""
    trailing = _take_trailing(seq[-1]) if seq else None
    seq.append(item)
    if trailing is not None:
        _add_trailing(item, trailing)


def _remove(tree: CommentedMap, index: int) -> None:
    """Delete one feed; the lines that followed it now follow what came before it."""
    seq = tree["feeds"]
    trailing = _take_trailing(seq[index])
    del seq[index]
    if not seq:
        seq.fa.set_flow_style()  # ``feeds: []``, still a list
    if trailing is None:
        return
    if index > 0:
        _add_trailing(seq[index - 1], trailing)
    elif seq:
        _comment_before(seq, trailing)
    else:
        slots = tree.ca.items.setdefault("feeds", [None, None, None, None])
        if slots[2] is None:
            slots[2] = trailing
        else:
            slots[2].value = slots[2].value.rstrip("\n") + trailing.value


_Token = Any  # ruamel.yaml.tokens.CommentToken, which ruamel does not type


def _last_key_token(item: object) -> tuple[CommentedMap, str] | None:
    """(mapping, key) that holds the comments after ``item``, when it is a flat mapping."""
    if not isinstance(item, CommentedMap) or not item:
        return None
    key = list(item)[-1]
    if isinstance(item[key], CommentedMap | CommentedSeq):
        return None
    return item, key


def _take_trailing(item: object) -> _Token | None:
    """Detach the whole lines after ``item`` (keeping its end-of-line comment) as a token."""
    where = _last_key_token(item)
    if where is None:
        return None
    mapping, key = where
    slots = mapping.ca.items.get(key)
    token = slots[2] if slots and len(slots) > 2 else None
    if token is None:
        return None
    value = token.value
    eol, newline, rest = value.partition("\n")
    if not rest:
        return None
    moved = copy.copy(token)
    moved.value = "\n" + rest
    token.value = eol + newline
    return moved


def _add_trailing(item: object, token: _Token) -> None:
    """Put the detached lines after ``item``, after any comment lines it already has."""
    where = _last_key_token(item)
    if where is None:
        return
    mapping, key = where
    slots = mapping.ca.items.setdefault(key, [None, None, None, None])
    own = slots[2]
    if own is None:
        slots[2] = token
    else:
        own.value = own.value + token.value.removeprefix("\n")


def _comment_before(seq: CommentedSeq, token: _Token) -> None:
    """Comment lines that followed a removed first item go before the new first item."""
    if seq.ca.comment is None:
        seq.ca.comment = [None, []]
    if seq.ca.comment[1] is None:
        seq.ca.comment[1] = []
    for line in token.value.split("\n"):
        text = line.lstrip()
        if text.startswith("#"):
            column = len(line) - len(text)
            seq.ca.comment[1].append(CommentToken(text + "\n", CommentMark(column), None))
