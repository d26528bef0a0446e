"""The rule engine: a query language, its evaluator with explanations, and the
Aho-Corasick prefilter that keeps thousands of rules fast. Pure; no I/O.

- ``syntax``: the grammar and parser (its docstring is the language reference).
- ``normalize``: how words are split, folded (case, accents) and stemmed.
- ``article``: an article's fields analysed once for every rule.
- ``evaluate``: does a tree hold, and where (hits for highlights).
- ``prefilter``: which rules can hold at all, from one scan of the article.

``any``/``all``/``exclude`` rules compile to the same trees (``monitor.match``), so
one engine runs every rule.
"""

from monitor.query.article import Analysed, FieldText
from monitor.query.ast import SCOPES, TEXT_FIELDS, And, FieldName, Near, Node, Not, Or, Regex, Term
from monitor.query.evaluate import Hit, evaluate
from monitor.query.prefilter import Prefilter
from monitor.query.syntax import QueryError, parse_query, phrase

__all__ = [
    "SCOPES",
    "TEXT_FIELDS",
    "Analysed",
    "And",
    "FieldName",
    "FieldText",
    "Hit",
    "Near",
    "Node",
    "Not",
    "Or",
    "Prefilter",
    "QueryError",
    "Regex",
    "Term",
    "evaluate",
    "parse_query",
    "phrase",
]
