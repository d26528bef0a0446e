"""A YAML document that remembers where every key is, so errors can say ``file:line:col``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.errors import ConfigError, ConfigProblem

Loc = Sequence[int | str]


@dataclass(frozen=True)
class Document:
    """Plain data loaded from YAML plus the ruamel tree that knows positions."""

    path: str
    data: object
    tree: object

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
    """Parse a YAML file; syntax errors become a ConfigError with the position."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([ConfigProblem(shown, 0, 0, f"cannot read config: {e.strerror}")]) from e
    except UnicodeDecodeError as e:
        raise ConfigError([ConfigProblem(shown, 1, 1, "config is not UTF-8 text")]) from e
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as e:
        raise ConfigError([_syntax_problem(shown, e)]) from e
    except YAMLError as e:
        raise ConfigError([ConfigProblem(shown, 1, 1, f"YAML: {e}")]) from e
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        kind = "a list" if isinstance(tree, CommentedSeq) else "a single value"
        message = f"config must be a mapping of keys such as 'feeds:' and 'rules:' (got {kind})"
        raise ConfigError([ConfigProblem(shown, 1, 1, message)])
    return Document(path=shown, data=_plain(tree), tree=tree)


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
