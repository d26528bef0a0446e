r"""The query language: a hand-written lexer and recursive-descent parser.

Grammar (EBNF; ``WORD``, ``PHRASE`` and ``REGEX`` are below)::

    query    = or , EOF ;
    or       = and , { "OR" , and } ;
    and      = unary , { [ "AND" ] , unary } ;          (* side by side: AND *)
    unary    = ( "NOT" | "-" ) , unary | near ;
    near     = primary , [ "NEAR/" , N , primary ] ;   (* both sides words or phrases *)
    primary  = FIELD , ":" , primary                   (* no space after the colon *)
             | "(" , or , ")"
             | [ "=" ] , WORD , [ "*" ]
             | [ "=" ] , PHRASE , [ "~" , N ]
             | REGEX ;
    FIELD    = "title" | "summary" | "content" | "author" | "feed" | "link" ;

Precedence, tightest first: field scope ``title:``, then ``NEAR/N``, then ``NOT`` and
``-``, then ``AND`` (written, or implied by putting terms side by side), then ``OR``.
So ``ATACMS OR HIMARS Kharkiv`` is ``ATACMS OR (HIMARS AND Kharkiv)``: use
parentheses to say ``(ATACMS OR HIMARS) Kharkiv``. ``-word`` is ``NOT word``.

Tokens:

- ``WORD``: a run of characters up to a space, a parenthesis or a double quote.
  Punctuation inside splits it into words matched as a phrase (``self-defense``,
  ``F-16``). A trailing ``*`` makes the last word a prefix (``Zelensk*``, at least
  3 letters in all). ``AND``, ``OR``, ``NOT`` and ``NEAR/N`` are operators only in
  capitals; in lower case they are words.
- ``PHRASE``: ``"..."``, the words in that order with only punctuation or spaces
  between them. ``"a b"~N``: the words in any order with at most N other words
  among them (``a NEAR/N b`` is the same for two words or phrases).
- ``=`` before a word or phrase: exact word forms for that term (no stemming).
- ``REGEX``: ``/.../`` (``\/`` for a slash inside), a regular expression in RE2's
  syntax (``monitor.query.pattern``: Python's, less back references and lookaround),
  searched in each field's plain text in linear time, case-insensitive unless the
  rule is ``case_sensitive``. It is compiled when the rule is loaded; one that matches
  the empty text is refused (it would match every article).

Bounds: a query is at most ``MAX_LENGTH`` characters, and parentheses and ``NOT``
nest at most ``MAX_DEPTH`` deep, so the parser, the evaluator and the prefilter
(all recursive) never meet a deeper tree.

Errors are QueryError with the offset in the query of the character at fault.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from monitor.language import looks_like_name, phrase_languages, phrase_names
from monitor.query.ast import SCOPES, TEXT_FIELDS, FieldName, Near, Node, Not, Or, Regex, Term
from monitor.query.ast import And as AndNode
from monitor.query.normalize import WORD, cased, fold, words
from monitor.query.pattern import PatternError, compile_pattern

Kind = Literal["(", ")", "AND", "OR", "NOT", "-", "NEAR", "FIELD", "WORD", "PHRASE", "REGEX", "EOF"]
_OPERATORS: dict[str, Kind] = {"AND": "AND", "OR": "OR", "NOT": "NOT"}
_STARTS = frozenset({"(", "NOT", "-", "FIELD", "WORD", "PHRASE", "REGEX"})
_FIELD = re.compile(r"([A-Za-z]+):")
_NEAR = re.compile(r"NEAR/(\d+)")
_NUMBER = re.compile(r"\d+")
_MIN_PREFIX = 3
_NOT_CHARACTER = re.compile("[\ud800-\udfff]")
MAX_LENGTH = 20_000
MAX_DEPTH = 32
_FIELD_NAMES = ", ".join(f"{name}:" for name in SCOPES)


class QueryError(ValueError):
    """A malformed query; ``position`` is the 0-based offset of the fault."""

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = position
        super().__init__(f"{message} (at character {position + 1})")


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme with its place in the query."""

    kind: Kind
    start: int
    end: int
    text: str = ""
    number: int | None = None
    exact: bool = False


def parse_query(text: str, *, exact: bool = False, case_sensitive: bool = False) -> Node:
    """Parse a query; ``exact`` and ``case_sensitive`` are the rule's defaults."""
    if len(text) > MAX_LENGTH:
        raise QueryError(f"a query may be at most {MAX_LENGTH:,} characters long", MAX_LENGTH)
    bad = _NOT_CHARACTER.search(text)  # from a command line that is not UTF-8, say
    if bad is not None:
        raise QueryError(f"{bad.group()!a} is a lone surrogate, not a character", bad.start())
    return _Parser(text, _lex(text), exact=exact, case_sensitive=case_sensitive).parse()


def phrase(
    text: str,
    *,
    exact: bool = False,
    case_sensitive: bool = False,
    fields: tuple[FieldName, ...] = TEXT_FIELDS,
    languages: tuple[str, ...] | None = None,
    name: bool | None = None,
) -> Term:
    """A Term for a phrase of an ``any``/``all``/``exclude`` list (punctuation ignored);
    ``languages`` when the rule says (``{uk: "..."}``), ``name`` for an alias."""
    return make_term(
        text,
        words(text),
        exact=exact,
        case_sensitive=case_sensitive,
        fields=fields,
        languages=languages,
        name=name,
    )


def make_term(
    label: str,
    written: list[str],
    *,
    exact: bool,
    case_sensitive: bool,
    fields: tuple[FieldName, ...],
    prefix: bool = False,
    languages: tuple[str, ...] | None = None,
    name: bool | None = None,
) -> Term:
    """A Term from its words as written: folded, with the languages its letters allow
    (unless given) and, when it is a name, name keys. A name is what ``name`` says
    (True for the names of ``aliases:``), else a phrase of capitalised words
    (``Zelenskyy``, ``ATACMS``); never an exact term or a prefix."""
    explicit = bool(name)
    if name is None:
        name = all(looks_like_name(w) for w in written)
    names = phrase_names(written, explicit=explicit) if name and not (exact or prefix) else ()
    return Term(
        label=label,
        keys=tuple(fold(w) for w in written),
        cased=tuple(cased(w) for w in written),
        exact=exact,
        case_sensitive=case_sensitive,
        prefix=prefix,
        fields=fields,
        written=tuple(written),
        languages=phrase_languages(" ".join(written)) if languages is None else languages,
        names=names,
    )


# -- lexer ------------------------------------------------------------------------


def _lex(query: str) -> list[Token]:
    tokens: list[Token] = []
    i, plain = 0, False  # plain: the word right after ``title:`` is never a field itself
    while i < len(query):
        c = query[i]
        if c.isspace():
            i, plain = i + 1, False
            continue
        if c in "()":
            token = Token("(" if c == "(" else ")", i, i + 1)
        elif c == "-":
            if i + 1 == len(query) or query[i + 1].isspace() or query[i + 1] == ")":
                raise QueryError("'-' must be followed directly by a term, as in -opinion", i)
            token = Token("-", i, i + 1)
        elif c == '"' or query.startswith('="', i):
            token = _phrase_token(query, i)
        elif c == "/":
            token = _regex_token(query, i)
        else:
            token = _bare_token(query, i, plain)
        tokens.append(token)
        i, plain = token.end, token.kind == "FIELD"
    tokens.append(Token("EOF", len(query), len(query)))
    return tokens


def _phrase_token(query: str, start: int) -> Token:
    exact = query[start] == "="
    opening = start + exact
    close = query.find('"', opening + 1)
    if close < 0:
        raise QueryError("this quote is never closed", opening)
    end, number = close + 1, None
    if query.startswith("~", end):
        digits = _NUMBER.match(query, end + 1)
        if digits is None:
            raise QueryError('~ needs a number of words, as in "ATACMS Kharkiv"~10', end)
        number, end = int(digits.group()), digits.end()
    return Token("PHRASE", start, end, query[opening + 1 : close], number, exact)


def _regex_token(query: str, start: int) -> Token:
    i = start + 1
    while i < len(query) and query[i] != "/":
        i += 2 if query[i] == "\\" else 1
    if i >= len(query):
        raise QueryError("this /regular expression/ is never closed", start)
    return Token("REGEX", start, i + 1, query[start + 1 : i])


def _bare_token(query: str, start: int, plain: bool) -> Token:
    end = start
    while end < len(query) and not query[end].isspace() and query[end] not in '()"':
        end += 1
    word = query[start:end]
    operator = _OPERATORS.get(word)
    if operator is not None:
        return Token(operator, start, end)
    if word == "NEAR" or word.startswith("NEAR/"):
        near = _NEAR.fullmatch(word)
        if near is None:
            raise QueryError("write NEAR with a number of words, as in NEAR/10", start)
        return Token("NEAR", start, end, number=int(near.group(1)))
    field = None if plain else _FIELD.match(word)
    if field is not None:
        name = field.group(1).lower()
        if name not in SCOPES:
            close = difflib.get_close_matches(name, list(SCOPES), n=1)
            hint = f"did you mean '{close[0]}:'? " if close else ""
            raise QueryError(
                f"unknown field '{field.group(1)}:' ({hint}fields: {_FIELD_NAMES}); "
                "to search for the text itself, put it in quotes",
                start,
            )
        return Token("FIELD", start, start + field.end(), name)
    if "~" in word:
        raise QueryError('~N works on a quoted phrase, as in "ATACMS Kharkiv"~10', start + word.index("~"))
    exact = word.startswith("=") and len(word) > 1
    return Token("WORD", start, end, word[1:] if exact else word, exact=exact)


# -- parser -----------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str, tokens: list[Token], *, exact: bool, case_sensitive: bool) -> None:
        self.query = query
        self.tokens = tokens
        self.at = 0
        self.exact = exact
        self.case_sensitive = case_sensitive
        self.scope: tuple[FieldName, ...] = TEXT_FIELDS
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise QueryError("empty query", 0)
        node = self._or()
        extra = self.peek()
        if extra.kind == ")":
            raise QueryError("unbalanced parenthesis: this ')' has no matching '('", extra.start)
        return node

    def _deeper(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(
                f"the query nests deeper than {MAX_DEPTH} levels of parentheses and NOT; write it flatter",
                token.start,
            )

    def _needs_operand(self, operator: Token, what: str) -> None:
        if self.peek().kind not in _STARTS:
            raise QueryError(f"{what} needs a term after it", operator.start)

    def _or(self) -> Node:
        children = [self._and()]
        while self.peek().kind == "OR":
            self._needs_operand(self.take(), "OR")
            children.append(self._and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _and(self) -> Node:
        children = [self._unary()]
        while True:
            token = self.peek()
            if token.kind == "AND":
                self._needs_operand(self.take(), "AND")
            elif token.kind not in _STARTS:
                break
            children.append(self._unary())
        return children[0] if len(children) == 1 else AndNode(tuple(children))

    def _unary(self) -> Node:
        token = self.peek()
        if token.kind in ("NOT", "-"):
            self.take()
            self._needs_operand(token, "NOT" if token.kind == "NOT" else "'-'")
            self._deeper(token)
            node = Not(self._unary())
            self.depth -= 1
            return node
        return self._near()

    def _near(self) -> Node:
        left = self._primary()
        near = self.peek()
        if near.kind != "NEAR":
            return left
        self.take()
        words = f"NEAR/{near.number}"
        if self.peek().kind not in ("WORD", "PHRASE", "FIELD"):
            raise QueryError(f"{words} needs a word or a quoted phrase after it", near.start)
        right = self._primary()
        if not isinstance(left, Term) or not isinstance(right, Term):
            raise QueryError(f"{words} works between two words or quoted phrases", near.start)
        if self.peek().kind == "NEAR":
            raise QueryError("one NEAR at a time: join the others with AND", self.peek().start)
        fields = tuple(f for f in left.fields if f in right.fields)
        if not fields:
            raise QueryError(f"the two sides of {words} search different fields", near.start)
        return Near((left, right), near.number or 0, fields)

    def _primary(self) -> Node:
        token = self.take()
        if token.kind == "FIELD":
            return self._scoped(token)
        if token.kind == "(":
            return self._group(token)
        if token.kind == "WORD":
            return self._word(token)
        if token.kind == "PHRASE":
            return self._phrase(token)
        if token.kind == "REGEX":
            return self._regex(token)
        if token.kind == ")":
            raise QueryError("unbalanced parenthesis: this ')' has no matching '('", token.start)
        if token.kind == "EOF":
            raise QueryError("the query ends where a term is expected", token.start)
        name = f"NEAR/{token.number}" if token.kind == "NEAR" else token.kind
        raise QueryError(f"{name} needs a term before it", token.start)

    def _scoped(self, field: Token) -> Node:
        after = self.peek()
        if after.kind not in ("(", "WORD", "PHRASE", "REGEX") or after.start != field.end:
            raise QueryError(
                f"{field.text}: needs a word, a quoted phrase, a /regex/ or (...) right after the colon",
                field.end,
            )
        outer, self.scope = self.scope, SCOPES[field.text]
        try:
            return self._primary()
        finally:
            self.scope = outer

    def _group(self, opening: Token) -> Node:
        if self.peek().kind == ")":
            raise QueryError("empty parentheses", self.peek().start)
        self._deeper(opening)
        node = self._or()
        if self.peek().kind != ")":
            raise QueryError("unbalanced parenthesis: this '(' is never closed", opening.start)
        self.take()
        self.depth -= 1
        return node

    def _term(self, text: str, start: int, label: str, exact: bool) -> Term:
        """A word or phrase; ``start`` is where ``text`` begins in the query."""
        star = text.find("*")
        prefix = star >= 0 and star == len(text.rstrip()) - 1
        if star >= 0 and (not prefix or not WORD.search(text[star - 1 : star] if star else "")):
            raise QueryError("'*' works only at the end of a word, as in Zelensk*", start + star)
        written = words(text)
        if not written:
            raise QueryError(f"{label!r} has no letters or digits to match", start)
        if prefix and sum(len(w) for w in written) < _MIN_PREFIX:
            raise QueryError(f"the prefix {label!r} is too short (at least {_MIN_PREFIX} letters)", start)
        return make_term(
            label,
            written,
            exact=exact or self.exact,
            case_sensitive=self.case_sensitive,
            fields=self.scope,
            prefix=prefix,
        )

    def _word(self, token: Token) -> Term:
        start = token.start + token.exact
        return self._term(token.text, start, token.text, token.exact)

    def _phrase(self, token: Token) -> Node:
        start = token.start + token.exact + 1
        term = self._term(token.text, start, token.text.strip(), token.exact)
        if token.number is None or len(term.keys) == 1:
            return term
        written = words(token.text)
        operands = tuple(
            self._term(w + ("*" if term.prefix and i == len(written) - 1 else ""), start, w, token.exact)
            for i, w in enumerate(written)
        )
        return Near(operands, token.number, self.scope)

    def _regex(self, token: Token) -> Regex:
        label = self.query[token.start : token.end]
        if not token.text:
            raise QueryError("empty regular expression", token.start)
        try:
            pattern = compile_pattern(token.text, case_sensitive=self.case_sensitive)
        except PatternError as e:
            raise QueryError(e.message, token.start + 1 + e.offset) from None
        if pattern.matches_empty():
            raise QueryError(
                "this regular expression matches empty text, so it would match every article", token.start
            )
        return Regex(label, pattern, self.scope)
