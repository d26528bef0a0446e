"""Which rules can match an article, from one Aho-Corasick scan (pyahocorasick) over
the literal words of every rule, so that an article costs in proportion to the rules
it may match rather than to the number of rules.

Each rule's tree gives a requirement: clauses of terms, all of which must be
satisfied (by at least one of their terms being in the article) for the rule to be
able to hold.

- a term: one clause, the term;
- AND, NEAR: the clauses of every part;
- OR: one clause, the terms of the smallest clause of each branch;
- NOT, a regex: no requirement. A rule left with none (``-opinion``, ``/K.iv/``) is
  a candidate for every article.

A term's literals depend on the article's language, so the automaton is built per
language, on the first article in it: one literal per reading of the term
(``evaluate.readings``), its words as the article's stream of that reading writes
them, between spaces: `` prisoner exchang `` (forms in English), `` обмін
полоненими `` (folded words, in an article of another language), `` selensk ``
(name keys). A one-word prefix is looked for as `` zelensk`` among the folded words.
The streams of every reading the language's literals use are scanned as one text.
The scan may find more than the evaluator will (a phrase across two sentences, a
literal of one reading in the stream of another), never less; tests compare it with
evaluating every rule on random rules and texts in several languages.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import ahocorasick

from monitor.query.article import Analysed, Space
from monitor.query.ast import And, Near, Node, Not, Or, Regex, Term
from monitor.query.evaluate import readings

Literal = tuple[Space, str]
"""(the stream it is looked for in, the text looked for)."""
Clause = tuple[Term, ...]
_SPACES: tuple[Space, ...] = ("form", "fold", "name")


def literals(term: Term, language: str | None) -> list[Literal]:
    """What the scan looks for to know that ``term`` may occur in an article of ``language``."""
    found: list[Literal] = []
    for space, keys in readings(term, language):
        if term.prefix and len(keys) == 1:
            found.append(("fold", " " + keys[0]))
        elif term.prefix:
            found.append((space, " " + " ".join(keys[:-1]) + " "))
        else:
            found.append((space, " " + " ".join(keys) + " "))
    return found


def requirement(node: Node) -> list[Clause]:
    """Clauses that must all be satisfied for ``node`` to hold ([] when none)."""
    if isinstance(node, Term):
        return [(node,)]
    if isinstance(node, Near):
        return [(term,) for term in node.operands]
    if isinstance(node, And):
        return [clause for child in node.children for clause in requirement(child)]
    if isinstance(node, Or):
        branches = [requirement(child) for child in node.children]
        if not all(branches):
            return []
        picked = [min(b, key=lambda c: (len(c), -min(sum(map(len, t.keys)) for t in c))) for b in branches]
        return [tuple(dict.fromkeys(term for clause in picked for term in clause))]
    if isinstance(node, Not | Regex):
        return []
    raise TypeError(node)  # pragma: no cover - every node kind is handled above


@dataclass(frozen=True, slots=True)
class _Scan:
    """The automaton of one language and the streams it reads."""

    automaton: ahocorasick.Automaton | None
    spaces: tuple[Space, ...]


class Prefilter:
    """Candidate rules (by index) for an article; never misses a rule that matches."""

    def __init__(self, trees: Sequence[Node]) -> None:
        self.always: list[int] = []
        self._need: list[int] = []
        self._rule_of: list[int] = []
        self._clauses: list[Clause] = []
        for index, tree in enumerate(trees):
            clauses = requirement(tree)
            self._need.append(len(clauses))
            if not clauses:
                self.always.append(index)
            for clause in clauses:
                self._rule_of.append(index)
                self._clauses.append(clause)
        self._scans: dict[str | None, _Scan] = {}
        self._lock = threading.Lock()

    def candidates(self, article: Analysed) -> list[int]:
        """Indexes of the rules that may match, in order."""
        scan = self._scan(article.language)
        satisfied: set[int] = set()
        if scan.automaton is not None:
            text = "\n".join(article.stream(space) for space in scan.spaces)
            for ids in {ids for _, ids in scan.automaton.iter(text)}:
                satisfied.update(ids)
        counts: dict[int, int] = {}
        for clause_id in satisfied:
            rule = self._rule_of[clause_id]
            counts[rule] = counts.get(rule, 0) + 1
        found = [rule for rule, n in counts.items() if n == self._need[rule]]
        return sorted(found + self.always)

    def _scan(self, language: str | None) -> _Scan:
        found = self._scans.get(language)
        if found is None:
            with self._lock:  # polls run in several threads; build each language once
                found = self._scans.get(language)
                if found is None:
                    found = self._scans[language] = self._build(language)
        return found

    def _build(self, language: str | None) -> _Scan:
        postings: dict[Literal, set[int]] = {}
        for clause_id, clause in enumerate(self._clauses):
            for term in clause:
                for lit in literals(term, language):
                    postings.setdefault(lit, set()).add(clause_id)
        spaces = tuple(s for s in _SPACES if any(space == s for space, _ in postings))
        patterns: dict[str, set[int]] = {}
        for (_, text), ids in postings.items():
            patterns.setdefault(text, set()).update(ids)
        return _Scan(_automaton(patterns), spaces)


def _automaton(patterns: dict[str, set[int]]) -> ahocorasick.Automaton | None:
    if not patterns:
        return None
    automaton = ahocorasick.Automaton()
    for text, ids in patterns.items():
        automaton.add_word(text, tuple(sorted(ids)))
    automaton.make_automaton()
    return automaton
