"""Pure rule matching: (rules, entry, feed name) -> matches with highlighted snippets.

The rule spec, as users write it in config.yaml:

- ``any``: at least one of these phrases appears; ``all``: every one appears;
  ``query``: a search query (the language is in ``monitor.query.syntax``). When a
  rule has several of them, all must hold. ``exclude``: none of these appears.
- A phrase matches whole words: ``ATACMS`` does not match ``ATACMSX``;
  ``prisoner exchange`` matches ``Prisoner-exchange`` and ``prisoner\\nexchange``
  (any punctuation or whitespace between the words).
- By default words match in any letter case, with or without accents, and in any
  word form of the article's language when the phrase may be in it (``prisoners
  exchanged``, ``обміну полоненими``; ``monitor.language``). The article's language
  is its feed's ``language:``, else detected; a phrase's languages are those its
  letters allow, or the one it names (``{uk: "..."}``). ``exact: true`` turns word
  forms off for the rule (``="..."`` for one phrase of a query);
  ``case_sensitive: true`` makes letter case count (``US`` is not ``us``).
- A phrase written with capitals is a name: it also matches the name in the other
  script, declined (``Zelenskyy``, ``Зеленського``). A phrase equal to a name of
  ``aliases:`` matches every variant of it the same way.
- Fields searched: the title, the summary, the content and, when the feed gives only
  a teaser, the article text from its web page (``page``), all as plain text (HTML
  removed first, so markup never matches). A query may also scope a term to the
  ``author``, the ``feed`` name or the ``link``.
- ``feeds``: optional globs on the feed name (``BBC*``), case-insensitive; a rule
  with no globs applies to every feed.

A rule with ``about`` (a description matched by meaning) is decided in two steps: here,
whether its feed scope and its words (``any``, ``all``, ``query``, ``exclude``) let the
article through (a :class:`Gate`); then ``monitor.meaning`` scores the articles that
passed, in one batch. ``Matcher.explain`` never returns such a rule on its own.

Every rule compiles to one query tree (``any`` -> OR, ``all`` -> AND, ``exclude`` ->
NOT) and one engine runs them all: an Aho-Corasick prefilter picks the rules that can
match, and only those are evaluated.

The snippet comes from the first hit in the summary, content or page (the title is
shown anyway), else from the title (else the author, feed name or link); every
matched term inside it is marked. ``Match.terms`` lists the matched terms in the
rule's order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from monitor.config import Settings, WatchRule
from monitor.config.schema import LanguagePhrase
from monitor.language import expand, lookup
from monitor.models import Entry, Field, Match, MatchField, Snippet
from monitor.query import Analysed, And, Hit, Node, Not, Or, Prefilter, Term, evaluate, parse_query, phrase

FIELDS: tuple[Field, ...] = ("title", "summary", "content", "page")
_SNIPPET_FIELDS: tuple[MatchField, ...] = ("summary", "content", "page", "title", "author", "feed", "link")
_ORDER = {name: i for i, name in enumerate(_SNIPPET_FIELDS)}
_WORDS = re.compile(r"\w+")
SNIPPET_BEFORE = 120
SNIPPET_AFTER = 180


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Whole words, any case, any punctuation or whitespace between them (no word
    forms): the plain-regex reading of a phrase, as the benchmark's naive loop uses it."""
    words = _WORDS.findall(phrase)
    body = r"\W+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def compile_rule(rule: WatchRule, aliases: Mapping[str, tuple[str, ...]] | None = None) -> Node:
    """A rule's query tree: ``all`` AND (``any`` OR) AND ``query`` AND NOT ``exclude``;
    ``aliases`` is ``monitor.language.expand`` of the config's ``aliases:``."""
    table = aliases or {}
    parts: list[Node] = [_phrase(p, rule, table) for p in rule.all]
    if rule.any:
        terms = [_phrase(p, rule, table) for p in rule.any]
        parts.append(terms[0] if len(terms) == 1 else Or(tuple(terms)))
    if rule.query is not None:
        tree = parse_query(rule.query, exact=rule.exact, case_sensitive=rule.case_sensitive)
        parts.append(with_aliases(tree, table) if table else tree)
    parts += [Not(_phrase(p, rule, table)) for p in rule.exclude]
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _phrase(text: str, rule: WatchRule, aliases: Mapping[str, tuple[str, ...]]) -> Node:
    """One phrase of a list: in its own language when written ``{uk: "..."}``."""
    code = text.language if isinstance(text, LanguagePhrase) else None
    term = phrase(
        text,
        exact=rule.exact,
        case_sensitive=rule.case_sensitive,
        languages=(code,) if code else None,
    )
    return _expand(term, aliases) if aliases else term


def with_aliases(node: Node, aliases: Mapping[str, tuple[str, ...]]) -> Node:
    """The tree with each term that is an alias name replaced by the OR of the name
    and its variants (terms of NEAR stay as written)."""
    if isinstance(node, Term):
        return _expand(node, aliases)
    if isinstance(node, And | Or):
        return type(node)(tuple(with_aliases(child, aliases) for child in node.children))
    if isinstance(node, Not):
        return Not(with_aliases(node.child, aliases))
    return node


def _expand(term: Term, aliases: Mapping[str, tuple[str, ...]]) -> Node:
    """A term that names an alias: the name and every variant, each a name (matched
    folded or by name key, in any script), all labelled as the rule wrote the name."""
    variants = () if term.prefix else lookup(aliases, term.label)
    if not variants:
        return term

    def named(text: str, languages: tuple[str, ...] | None = None) -> Term:
        made = phrase(
            text,
            exact=term.exact,
            case_sensitive=term.case_sensitive,
            fields=term.fields,
            languages=languages,
            name=True,
        )
        # A name's inflections come from its name key; a lemmatiser would also take
        # ``Зеленська`` (his wife) for ``Зеленський``. Scripts without keys keep forms.
        return replace(made, label=term.label, languages=() if made.names else made.languages)

    return Or((named(term.label, term.languages), *(named(v) for v in variants)))


def has_words(rule: WatchRule) -> bool:
    """Whether the rule has any lexical part (an ``about`` rule may have none)."""
    return bool(rule.any or rule.all or rule.exclude or rule.query is not None)


@dataclass(frozen=True)
class CompiledRule:
    """A WatchRule compiled once to its query tree (``None``: an ``about`` rule without words)."""

    name: str
    tree: Node | None
    feeds: tuple[str, ...]
    about: bool = False

    @classmethod
    def compile(cls, rule: WatchRule, aliases: Mapping[str, tuple[str, ...]] | None = None) -> CompiledRule:
        """Parse and compile a (validated) rule (``aliases`` as ``compile_rule`` takes them)."""
        tree = compile_rule(rule, aliases) if has_words(rule) else None
        feeds = tuple(g.lower() for g in rule.feeds)
        return cls(name=rule.name, tree=tree, feeds=feeds, about=bool(rule.about))

    def applies_to(self, feed_name: str) -> bool:
        """Whether the rule's feed globs admit this feed."""
        name = feed_name.lower()
        return not self.feeds or any(fnmatchcase(name, glob) for glob in self.feeds)

    def evaluate(self, entry: Entry, feed_name: str = "", language: str | None = None) -> Match | None:
        """A Match when the entry satisfies the rule (feed globs aside), else None."""
        texts = article_texts(entry, feed_name)
        hits = [] if self.tree is None else evaluate(self.tree, Analysed(texts, language))
        return None if hits is None else build_match(self.name, hits, texts)


@dataclass(frozen=True, slots=True)
class Explanation:
    """A match with every place its terms were found (for ``monitor rules test``)."""

    match: Match
    hits: tuple[Hit, ...]

    def where(self) -> dict[str, list[MatchField]]:
        """Each matched term -> the fields it was found in, in the snippet's order."""
        found: dict[str, list[MatchField]] = {}
        for hit in self.hits:
            fields = found.setdefault(hit.term, [])
            if hit.field not in fields:
                fields.append(hit.field)
        return {term: sorted(fields, key=_ORDER.__getitem__) for term, fields in found.items()}


@dataclass(frozen=True, slots=True)
class Gate:
    """An ``about`` rule whose feed scope and words let an article through (its meaning
    decides next), with the places its words matched."""

    rule: str
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class Screened:
    """One article through every rule: the matches, the ``about`` rules still open, and
    the language it was read in (its feed's, else detected)."""

    explained: list[Explanation]
    gates: list[Gate]
    language: str | None


class Matcher:
    """All rules, compiled once per configuration, behind one prefilter.

    ``prefilter=False`` evaluates every rule on every entry: the reference that the
    prefiltered matcher must always agree with. ``aliases`` is the config's
    ``aliases:``; ``languages`` maps a feed's name to the language it declares (its
    articles are not detected).
    """

    def __init__(
        self,
        rules: Iterable[WatchRule],
        *,
        prefilter: bool = True,
        aliases: Mapping[str, Sequence[str]] | None = None,
        languages: Mapping[str, str] | None = None,
    ) -> None:
        table = expand(aliases or {})
        self.rules = tuple(CompiledRule.compile(r, table) for r in rules)
        self._languages = dict(languages or {})
        self._worded = [i for i, rule in enumerate(self.rules) if rule.tree is not None]
        self._open = [i for i, rule in enumerate(self.rules) if rule.tree is None]
        trees = [tree for rule in self.rules if (tree := rule.tree) is not None]
        self._prefilter = Prefilter(trees) if prefilter else None

    @classmethod
    def for_settings(cls, settings: Settings | None, rules: Iterable[WatchRule] | None = None) -> Matcher:
        """The settings' rules (or ``rules``) with its aliases and feeds' languages."""
        if settings is None:
            return cls(rules or ())
        languages = {feed.name: feed.language for feed in settings.feeds if feed.language}
        chosen = settings.rules if rules is None else rules
        return cls(chosen, aliases=settings.aliases, languages=languages)

    def match(self, entry: Entry, feed_name: str) -> list[Match]:
        """Every rule the entry satisfies, in config order."""
        return [found.match for found in self.explain(entry, feed_name)]

    @property
    def about(self) -> bool:
        """Whether any rule is matched by meaning (then ``screen`` gives gates)."""
        return any(rule.about for rule in self.rules)

    def explain(self, entry: Entry, feed_name: str) -> list[Explanation]:
        """Every rule the entry satisfies with where each term matched, in config order
        (``about`` rules are not decided here: see ``screen``)."""
        return self.screen(entry, feed_name).explained

    def screen(self, entry: Entry, feed_name: str) -> Screened:
        """The word rules the entry satisfies, and the ``about`` rules it may still match."""
        texts = article_texts(entry, feed_name)
        article = Analysed(texts, self._languages.get(feed_name))
        if self._prefilter is None:
            candidates: Iterable[int] = self._worded
        else:
            candidates = [self._worded[i] for i in self._prefilter.candidates(article)]
        found, gates = [], []
        for index in sorted([*candidates, *self._open]):
            rule = self.rules[index]
            if not rule.applies_to(feed_name):
                continue
            hits = [] if rule.tree is None else evaluate(rule.tree, article)
            if hits is None:
                continue
            if rule.about:
                gates.append(Gate(rule.name, tuple(hits)))
            else:
                found.append(Explanation(build_match(rule.name, hits, texts), tuple(hits)))
        return Screened(found, gates, article.language)


def article_texts(entry: Entry, feed_name: str) -> dict[MatchField, str]:
    """Every field a rule can search, as plain text."""
    return {
        "title": entry.title,
        "summary": entry.summary_text,
        "content": entry.content_text,
        "page": entry.page_text,
        "author": entry.author or "",
        "feed": feed_name,
        "link": entry.link or "",
    }


def build_match(rule: str, hits: Sequence[Hit], texts: dict[MatchField, str]) -> Match:
    """The Match for a rule that held with these hits: terms, field and snippet."""
    terms = tuple(dict.fromkeys(h.term for h in hits))
    if not hits:  # a rule of NOTs only: nothing to mark, show the start of the text
        field: MatchField = next((f for f in _SNIPPET_FIELDS if texts[f]), "title")
        return Match(rule=rule, field=field, terms=terms, snippet=snippet_around(texts[field], 0, 0, ()))
    anchor = min(hits, key=lambda h: (_ORDER[h.field], h.start))
    spans = [(h.start, h.end) for h in hits if h.field == anchor.field]
    snippet = snippet_around(texts[anchor.field], anchor.start, anchor.end, spans)
    return Match(rule=rule, field=anchor.field, terms=terms, snippet=snippet)


def make_snippet(text: str, start: int, end: int, patterns: Sequence[re.Pattern[str]]) -> Snippet:
    """About 300 characters around [start, end) on one line, every pattern hit marked."""
    return snippet_around(text, start, end, [m.span() for p in patterns for m in p.finditer(text)])


def snippet_around(text: str, start: int, end: int, spans: Iterable[tuple[int, int]]) -> Snippet:
    """About 300 characters around [start, end) on one line; the spans (in ``text``)
    that lie wholly inside it are marked, overlapping ones merged."""
    lo = max(0, start - SNIPPET_BEFORE)
    hi = min(len(text), end + SNIPPET_AFTER)
    if lo > 0:
        space = text.find(" ", lo, start)
        lo = space + 1 if space != -1 else lo
    if hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space != -1 else hi
    window = text[lo:hi].replace("\n", " ")
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(text) else ""
    # Spans are found in the whole text, not the window: a word cut at the window's
    # edge never looks like a whole word (``XATACMS`` cut to ``ATACMS``).
    shift = len(prefix) - lo
    inside = sorted({(s + shift, e + shift) for s, e in spans if lo <= s and e <= hi and e > s})
    merged: list[tuple[int, int]] = []
    for s, e in inside:
        if merged and s < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return Snippet(text=prefix + window + suffix, highlights=tuple(merged))
