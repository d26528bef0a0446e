"""A YAML document that remembers where every key is, so errors can say ``file:line:col``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.config.bounded import Refused, bounded_yaml, read_text
from monitor.errors import ConfigError, ConfigProblem

_COMMENT_AT = re.compile(r"CommentToken\(.*?line: (\d+), col: (\d+)\)")

Loc = Sequence[int | str]


@dataclass(frozen=True)
class Document:
    """Plain data loaded from YAML plus the ruamel tree that knows positions."""

    path: str
    data: object
    tree: object
    text: str = ""

    def locate(self, loc: Loc) -> tuple[int, int]:
        """1-based (line, column) of the deepest key of ``loc`` present in the file."""
        node = self.tree
        line, col = 1, 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                key_line, key_col = node.lc.key(part)
                line, col = key_line + 1, key_col + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                item_line, item_col = node.lc.item(part)
                line, col = item_line + 1, item_col + 1
                node = node[part]
            else:
                break
        return line, col

    def problem(self, loc: Loc, message: str) -> ConfigProblem:
        """A ConfigProblem pointing at ``loc``."""
        line, col = self.locate(loc)
        return ConfigProblem(self.path, line, col, message)

    def problem_inside(self, loc: Loc, offset: int, message: str) -> ConfigProblem:
        """A ConfigProblem pointing at character ``offset`` of the string value at ``loc``
        (say, the stray parenthesis inside a rule's query), quoting and folding included."""
        parent, value = self.tree, None
        for part in loc[:-1]:
            parent = parent[part]  # type: ignore[index]
        key = loc[-1]
        if isinstance(parent, CommentedMap) and key in parent:
            line, col = parent.lc.value(key)
            value = parent[key]
        elif isinstance(parent, CommentedSeq) and isinstance(key, int) and 0 <= key < len(parent):
            line, col = parent.lc.item(key)
            value = parent[key]
        if not isinstance(value, str) or not self.text:
            return self.problem(loc, message)
        lines = self.text.splitlines(keepends=True)
        start = sum(len(text) for text in lines[:line]) + col
        index = source_index(self.text, start, value, offset)
        row = self.text.count("\n", 0, index) + 1
        column = index - (self.text.rfind("\n", 0, index) + 1) + 1
        return ConfigProblem(self.path, row, column, message)


def source_index(source: str, start: int, value: str, offset: int) -> int:
    """Where character ``offset`` of a YAML string ``value`` is written in ``source``,
    the scalar starting at ``start``: undoes quotes, escapes and line folding."""
    style = source[start] if start < len(source) else ""
    if style and style in "|>":
        newline = source.find("\n", start)
        i = _skip_indent(source, newline + 1) if newline >= 0 else start
    else:
        i = start + 1 if style in ("'", '"') else start
    for char in value[:offset]:
        _, i = _written(source, i, char, style)
    if offset < len(value):
        return _written(source, i, value[offset], style)[0]
    return i


def _written(source: str, i: int, char: str, style: str) -> tuple[int, int]:
    """(start, end) of the source text that writes ``char``, looking from ``i``."""
    while i < len(source):
        here, ahead = source[i], source[i + 1 : i + 2]
        if style == '"' and here == "\\":
            if ahead == "\n":  # an escaped line break writes nothing
                i = _skip_indent(source, i + 2)
                continue
            return i, i + {"x": 4, "u": 6, "U": 10}.get(ahead, 2)
        if style == "'" and here == "'" and ahead == "'":
            return i, i + 2
        if here == "\n":
            if char in " \n":  # a folded line break
                return i, _skip_indent(source, i + 1)
            i = _skip_indent(source, i + 1)
            continue
        if here == char or here not in " \t\r":
            return i, i + 1
        i += 1  # spaces that folding removed
    return i, i


def _skip_indent(source: str, i: int) -> int:
    while i < len(source) and source[i] in " \t":
        i += 1
    return i


def _plain(node: object) -> object:
    """ruamel's round-trip types -> dict/list/str/int/float/bool/None."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def read_document(path: Path) -> Document:
    """Parse a YAML file within the limits of ``bounded``; syntax errors and broken
    limits become a ConfigError with the position."""
    shown = str(path)
    try:
        text = read_text(path)
    except OSError as e:
        raise ConfigError([ConfigProblem(shown, 0, 0, f"cannot read config: {e.strerror}")]) from e
    except UnicodeDecodeError as e:
        raise ConfigError([ConfigProblem(shown, 1, 1, "config is not UTF-8 text")]) from e
    except Refused as e:
        raise ConfigError([ConfigProblem(shown, 1, 1, e.message)]) from e
    try:
        tree = bounded_yaml().load(text)
    except Refused as e:
        raise ConfigError([ConfigProblem(shown, e.line, e.column, f"YAML: {e.message}")]) from e
    except MarkedYAMLError as e:
        raise ConfigError([_syntax_problem(shown, e)]) from e
    except YAMLError as e:
        raise ConfigError([ConfigProblem(shown, 1, 1, f"YAML: {e}")]) from e
    except NotImplementedError as e:  # ruamel's round trip cannot place some comments
        raise ConfigError([_comment_problem(shown, e)]) from e
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        kind = "a list" if isinstance(tree, CommentedSeq) else "a single value"
        message = f"config must be a mapping of keys such as 'feeds:' and 'rules:' (got {kind})"
        raise ConfigError([ConfigProblem(shown, 1, 1, message)])
    return Document(path=shown, data=_plain(tree), tree=tree, text=text)


def _comment_problem(shown: str, e: NotImplementedError) -> ConfigProblem:
    """ruamel.yaml keeps comments to write the file back, and for some layouts it gives
    up (``overlap in comment``: a comment after a key whose value then starts on a
    line of its own, indented by one space). The file is valid YAML, but monitor reads
    it round trip: say where the comment is and what to do."""
    found = _COMMENT_AT.search(str(e))
    line, column = (int(found[1]) + 1, int(found[2]) + 1) if found else (1, 1)
    message = (
        "YAML: this comment cannot be kept where it is (ruamel.yaml: overlap in comment); "
        "put it on a line of its own"
    )
    return ConfigProblem(shown, line, column, message)


def _syntax_problem(shown: str, e: MarkedYAMLError) -> ConfigProblem:
    """A YAML syntax error in words a person editing the file understands."""
    context, problem = str(e.context or ""), str(e.problem or "")
    mark = e.problem_mark or e.context_mark
    if "'\\t'" in problem:
        message = "found a tab character; indent with spaces, not tabs"
    elif "quoted scalar" in context and "end of stream" in problem:
        mark = e.context_mark or mark
        message = "this quoted string is never closed"
    else:
        message = " ".join(part for part in (context, problem) if part)
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return ConfigProblem(shown, line, col, f"YAML: {message}")
