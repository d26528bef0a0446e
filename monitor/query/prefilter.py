"""Which rules can match an article, from one Aho-Corasick scan (pyahocorasick) over
the literal words of every rule, so that an article costs in proportion to the rules
it may match rather than to the number of rules.

Each rule's tree gives a requirement: clauses of literals, all of which must be
satisfied (by at least one of their literals being in the article) for the rule to
be able to hold.

- a term: one clause, its literal;
- AND, NEAR: the clauses of every part;
- OR: one clause, the literals of the smallest clause of each branch;
- NOT, a regex: no requirement. A rule left with none (``-opinion``, ``/K.iv/``) is
  a candidate for every article.

A literal is a term's words as the analysed article's stream writes them, between
spaces: `` prisoner exchang `` (stems; an exact term's folded words give the same
stems). A one-word prefix is looked for as `` zelensk`` in the folded stream. The
scan may find more than the evaluator will (a phrase across two sentences), never
less; tests compare it with evaluating every rule on random rules and texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import ahocorasick

from monitor.query.article import Analysed
from monitor.query.ast import And, Near, Node, Not, Or, Regex, Term
from monitor.query.normalize import stem

Literal = tuple[bool, str]
"""(in the folded stream?, the text looked for)."""
Clause = tuple[Literal, ...]


def literal(term: Term) -> Literal:
    """What the scan looks for to know that ``term`` may occur."""
    keys = [stem(k) if term.exact else k for k in term.keys]
    if term.prefix and len(keys) == 1:
        return True, " " + term.keys[0]
    if term.prefix:
        keys = keys[:-1]
    return False, " " + " ".join(keys) + " "


def requirement(node: Node) -> list[Clause]:
    """Clauses that must all be satisfied for ``node`` to hold ([] when none)."""
    if isinstance(node, Term):
        return [(literal(node),)]
    if isinstance(node, Near):
        return [(literal(term),) for term in node.operands]
    if isinstance(node, And):
        return [clause for child in node.children for clause in requirement(child)]
    if isinstance(node, Or):
        branches = [requirement(child) for child in node.children]
        if not all(branches):
            return []
        picked = [min(b, key=lambda c: (len(c), -min(len(text) for _, text in c))) for b in branches]
        return [tuple(dict.fromkeys(lit for clause in picked for lit in clause))]
    if isinstance(node, Not | Regex):
        return []
    raise TypeError(node)  # pragma: no cover - every node kind is handled above


class Prefilter:
    """Candidate rules (by index) for an article; never misses a rule that matches."""

    def __init__(self, trees: Sequence[Node]) -> None:
        self.always: list[int] = []
        self._need: list[int] = []
        self._rule_of: list[int] = []
        postings: dict[Literal, list[int]] = {}
        for index, tree in enumerate(trees):
            clauses = requirement(tree)
            self._need.append(len(clauses))
            if not clauses:
                self.always.append(index)
            for clause in clauses:
                clause_id = len(self._rule_of)
                self._rule_of.append(index)
                for lit in clause:
                    postings.setdefault(lit, []).append(clause_id)
        self._stems = _automaton({text: ids for (folded, text), ids in postings.items() if not folded})
        self._folds = _automaton({text: ids for (folded, text), ids in postings.items() if folded})

    def candidates(self, article: Analysed) -> list[int]:
        """Indexes of the rules that may match, in order."""
        satisfied: set[int] = set()
        if self._stems is not None:
            for ids in {ids for _, ids in self._stems.iter(article.stream(folded=False))}:
                satisfied.update(ids)
        if self._folds is not None:
            for ids in {ids for _, ids in self._folds.iter(article.stream(folded=True))}:
                satisfied.update(ids)
        counts: dict[int, int] = {}
        for clause_id in satisfied:
            rule = self._rule_of[clause_id]
            counts[rule] = counts.get(rule, 0) + 1
        found = [rule for rule, n in counts.items() if n == self._need[rule]]
        return sorted(found + self.always)


def _automaton(patterns: dict[str, list[int]]) -> ahocorasick.Automaton | None:
    if not patterns:
        return None
    automaton = ahocorasick.Automaton()
    for text, ids in patterns.items():
        automaton.add_word(text, tuple(ids))
    automaton.make_automaton()
    return automaton
