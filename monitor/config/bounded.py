"""YAML that cannot run away: ruamel's round-trip loader with limits checked while the
document is composed, before any plain data is built from it.

ruamel itself composes an alias as a reference to the anchored node, so a 1 KB "billion
laughs" file loads in milliseconds; it is turning it into plain dicts and lists (and
validating them) that takes gigabytes. The composer below keeps, for every anchored
node, how many values it stands for and how deep it nests, so the expansion is known
exactly, in time linear in the file, before anything is expanded.

Limits, each refused at the line and column where it is crossed:

- the file: at most ``MAX_BYTES`` (read no further);
- nesting: at most ``MAX_DEPTH`` levels of mappings and lists, aliases counted as
  what they expand to (ruamel's composer recurses once per level);
- aliases: in all, they may add at most ``MAX_ALIASED`` values; an alias inside the
  collection it refers to (a recursive structure) is refused;
- tags: only ``!!str`` (and the non-specific ``!``); ``!!python/object``, ``!!binary``,
  ``!foo`` and the rest are refused, as are values that cannot be built (a number of
  5,000 digits, 2024-13-45);
- text: control characters and lone surrogates (only ``"\\x00"``-style escapes can
  write them) are refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import StreamMark
from ruamel.yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent

from monitor.files import TooLarge, read_at_most

MAX_BYTES = 2 * 1024 * 1024
"""About 20,000 rules; ruamel reads about 100 KB a second on a busy 2-core machine."""
MAX_DEPTH = 64
MAX_ALIASED = 100_000
_CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset({"!", _CORE + "str"})
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class Refused(Exception):
    """The document breaks one of the limits; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, mark: StreamMark | None) -> None:
        self.message = message
        self.line = mark.line + 1 if mark is not None else 1
        self.column = mark.column + 1 if mark is not None else 1
        super().__init__(message)


def read_text(path: Path) -> str:
    """The file as text, refused past ``MAX_BYTES``. OSError and UnicodeDecodeError
    are the caller's to word."""
    try:
        data = read_at_most(path, MAX_BYTES)
    except TooLarge as e:
        raise Refused(f"the file is {e}, the most monitor reads", None) from None
    return data.decode("utf-8")


def bounded_yaml() -> YAML:
    """A round-trip YAML whose ``load`` raises Refused instead of exceeding a limit."""
    yaml = YAML(typ="rt")
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _CheckedConstructor
    return yaml


def shown_tag(tag: str) -> str:
    """``tag:yaml.org,2002:binary`` as it is written: ``!!binary``."""
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


class _BoundedComposer(Composer):
    """Composes as ruamel does, counting values and depth, checking tags and text."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # YAML lets a later anchor reuse a name
        self._open: list[list[int]] = []  # per open collection: [values, depth below]
        self._stats: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (values, depth)
        self._aliased = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            return self._alias(parent, index, event)
        _check_tag(event)
        collection = isinstance(event, MappingStartEvent | SequenceStartEvent)
        if collection:
            if len(self._open) >= MAX_DEPTH:
                message = f"nested deeper than {MAX_DEPTH} levels of mappings and lists"
                raise Refused(message, event.start_mark)
            self._open.append([0, 0])
        node = super().compose_node(parent, index)
        if collection:
            values, below = self._open.pop()
            stats = (values + 1, below + 1)
        else:
            stats = (1, 0)
        if event.anchor is not None:
            self._stats[id(node)] = stats
        self._count(stats)
        return node

    def _alias(self, parent: Any, index: Any, event: AliasEvent) -> Any:
        node = super().compose_node(parent, index)  # ruamel refuses an undefined alias
        stats = self._stats.get(id(node))
        if stats is None:
            raise Refused(f"alias *{event.anchor} is inside the anchor it refers to", event.start_mark)
        self._aliased += stats[0]
        if self._aliased > MAX_ALIASED:
            raise Refused(
                f"aliases expand to more than {MAX_ALIASED:,} values; write the values out instead",
                event.start_mark,
            )
        if len(self._open) + stats[1] > MAX_DEPTH:
            raise Refused(f"this alias nests deeper than {MAX_DEPTH} levels", event.start_mark)
        self._count(stats)
        return node

    def _count(self, stats: tuple[int, int]) -> None:
        if self._open:
            top = self._open[-1]
            top[0] += stats[0]
            top[1] = max(top[1], stats[1])


def _check_tag(event: Any) -> None:
    """Only the plain tags: nothing that builds objects, bytes or sets."""
    tag = getattr(event, "tag", None)
    if tag is not None and str(tag) not in ALLOWED_TAGS:
        raise Refused(
            f"tag {shown_tag(str(tag))} is not accepted: write plain text, numbers, lists and mappings",
            event.start_mark,
        )


class _CheckedConstructor(RoundTripConstructor):
    """A value ruamel cannot build (2024-13-45, a 5,000-digit number) is Refused there,
    and so is text that is not characters."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            data = super().construct_object(node, deep)
        except (ValueError, KeyError, OverflowError) as e:
            reason = str(e).split(";")[0]
            raise Refused(f"cannot read this value: {reason}", node.start_mark) from e
        if isinstance(data, str):
            bad = _NOT_TEXT.search(data)
            if bad is not None:
                what = "a lone surrogate" if bad.group() >= "\ud800" else "a control character"
                raise Refused(f"this text holds {what} ({bad.group()!a}); remove it", node.start_mark)
        return data
