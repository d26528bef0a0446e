"""The query tree: frozen nodes that the parser builds and the evaluator walks.

Every leaf knows the fields it searches (a field scope such as ``title:`` is pushed
down to the leaves when parsing), so evaluating a node needs nothing but the node
and the analysed article.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.models import MatchField
from monitor.query.pattern import Pattern

FieldName = MatchField
TEXT_FIELDS: tuple[FieldName, ...] = ("title", "summary", "content", "page")
"""What a term without a field scope searches: the article's own text."""

SCOPES: dict[str, tuple[FieldName, ...]] = {
    "title": ("title",),
    "summary": ("summary",),
    "content": ("content", "page"),
    "author": ("author",),
    "feed": ("feed",),
    "link": ("link",),
}
"""Field scopes as written in a query; ``content:`` is the feed's content and the page text."""


@dataclass(frozen=True, slots=True)
class Term:
    """A word or a phrase (consecutive words), matched word by word.

    ``keys`` are the words case- and accent-folded; with ``prefix`` the last one is a
    prefix (``Zelensk*``). ``written`` are the words as written and ``languages`` the
    languages the phrase may be in: unless ``exact``, an article in one of them
    compares the words' forms in its language (``Gefangenenaustausches`` meets
    ``Gefangenenaustausch`` in German), any other article the folded words. A phrase
    that is a name also has ``names``, its name keys (``("selensk",)``), which meet
    the name-like words of any article in any script. ``cased`` keeps the words'
    letter case for ``case_sensitive``.
    """

    label: str
    keys: tuple[str, ...]
    cased: tuple[str, ...]
    exact: bool
    case_sensitive: bool
    prefix: bool
    fields: tuple[FieldName, ...]
    written: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    names: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Regex:
    """A ``/regular expression/`` searched in the plain text of each field (by RE2)."""

    label: str
    pattern: Pattern
    fields: tuple[FieldName, ...]


@dataclass(frozen=True, slots=True)
class And:
    """Every child holds."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child holds."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not hold (its words are never highlighted)."""

    child: Node


@dataclass(frozen=True, slots=True)
class Near:
    """All operands in one field, with at most ``distance`` other words among them."""

    operands: tuple[Term, ...]
    distance: int
    fields: tuple[FieldName, ...]


Node = Term | Regex | And | Or | Not | Near


def leaves(node: Node) -> list[Term | Regex]:
    """Every term and regex of a tree, in order (those under NOT included)."""
    if isinstance(node, Term | Regex):
        return [node]
    if isinstance(node, Near):
        return list(node.operands)
    if isinstance(node, Not):
        return leaves(node.child)
    return [leaf for child in node.children for leaf in leaves(child)]
