"""Where the daemon's status server listens, read for ``monitor healthcheck`` alone.

A probe asks the running daemon, and the daemon runs on its last good configuration:
the file may hold a broken edit that the daemon refused. So only ``http.listen`` is
read, tolerantly, and ``MONITOR_HTTP_LISTEN`` wins as it does for the daemon.

Reading stays bounded whatever the file holds: at most ``MAX_BYTES`` of it; its YAML
events are scanned, never composed (an alias is never expanded), to ``MAX_DEPTH``
levels; and when the YAML breaks before ``http:``, a line scan looks for the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingStartEvent,
    ScalarEvent,
)

from monitor.config.bounded import MAX_BYTES, MAX_DEPTH
from monitor.config.schema import HttpSettings
from monitor.errors import ConfigError, ConfigProblem

ENV_LISTEN = "MONITOR_HTTP_LISTEN"
_HTTP_BLOCK = re.compile(r"http[ \t]*:[ \t]*(?:#.*)?")
_HTTP_FLOW = re.compile(r"http[ \t]*:[ \t]*\{[^}#]*?\blisten[ \t]*:[ \t]*(\"[^\"]*\"|'[^']*'|[^\s,}#]+)")
_LISTEN = re.compile(r"[ \t]+listen[ \t]*:[ \t]*(\"[^\"]*\"|'[^']*'|[^\s#]+)")
_NULL = frozenset({"", "~", "null", "Null", "NULL"})


@dataclass(frozen=True, slots=True)
class _Found:
    value: str
    line: int
    column: int


def listen_address(path: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """``host:port`` from the environment or the file; None when neither gives one.

    ConfigError when the file cannot be read at all, or the address is malformed.
    """
    env = os.environ if environ is None else environ
    shown = str(path)
    from_env = env.get(ENV_LISTEN, "").strip()
    if from_env:
        return _checked(_Found(from_env, 0, 0), f"{ENV_LISTEN} (from the environment)", shown)
    try:
        with path.open("rb") as f:
            text = f.read(MAX_BYTES).decode("utf-8", "replace")
    except OSError as e:
        raise ConfigError([ConfigProblem(shown, 0, 0, f"cannot read config: {e.strerror}")]) from e
    found = _from_events(text) or _from_lines(text)
    if found is None or not found.value:
        return None
    return _checked(found, "http.listen", shown)


def _checked(found: _Found, where: str, shown: str) -> str:
    try:
        HttpSettings(listen=found.value)
    except ValidationError:
        message = f"{where}: must look like 127.0.0.1:8787, got {found.value!r}"
        raise ConfigError([ConfigProblem(shown, found.line, found.column, message)]) from None
    return found.value


def _from_events(text: str) -> _Found | None:
    """``http: {listen: ...}`` from the YAML events, up to where the YAML breaks."""
    anchors: dict[str, ScalarEvent] = {}
    try:
        for keys, event in _values(text):
            if isinstance(event, ScalarEvent) and event.anchor is not None and len(anchors) < 1000:
                anchors[event.anchor] = event
            if keys != ("http", "listen"):
                continue
            scalar = anchors.get(event.anchor) if isinstance(event, AliasEvent) else event
            mark = event.start_mark
            if not isinstance(scalar, ScalarEvent) or (scalar.style is None and scalar.value in _NULL):
                return _Found("", mark.line + 1, mark.column + 1)  # there, but no address
            return _Found(scalar.value, mark.line + 1, mark.column + 1)
    except YAMLError:
        return None
    return None


def _values(text: str) -> Iterator[tuple[tuple[str | None, ...], Any]]:
    """Each value event with the mapping keys above it (None for a key that is not text)."""
    stack: list[list[object]] = []  # per open collection: [is mapping, key expected, key, was a key]
    for event in YAML(typ="rt").parse(text):
        frame = stack[-1] if stack else None
        is_key = frame is not None and frame[0] is True and frame[1] is True
        if isinstance(event, CollectionEndEvent):
            done = stack.pop()
            if stack and not done[3]:
                stack[-1][1] = True
            continue
        if not isinstance(event, ScalarEvent | AliasEvent | CollectionStartEvent):
            continue
        if is_key and frame is not None:
            frame[1], frame[2] = False, event.value if isinstance(event, ScalarEvent) else None
        elif frame is not None:
            yield tuple(str(f[2]) if f[0] and f[2] is not None else None for f in stack), event
            frame[1] = frame[0]
        if isinstance(event, CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                return
            stack.append([isinstance(event, MappingStartEvent), True, None, is_key])


def _from_lines(text: str) -> _Found | None:
    """The line scan for a file whose YAML breaks before ``http:``: ``http:`` at the start
    of a line, then ``listen:`` indented below it (or inside ``{...}`` on the line)."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        flow = _HTTP_FLOW.match(line)
        if flow is not None:
            return _Found(_unquoted(flow.group(1)), number + 1, flow.start(1) + 1)
        if _HTTP_BLOCK.fullmatch(line) is None:
            continue
        for below, inner in enumerate(lines[number + 1 :], start=number + 2):
            if inner.strip() and not inner[0].isspace():
                break
            listen = _LISTEN.match(inner)
            if listen is not None:
                return _Found(_unquoted(listen.group(1)), below, listen.start(1) + 1)
    return None


def _unquoted(value: str) -> str:
    """The text of a scalar as the line scan found it; "" for null."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return "" if value in _NULL else value
