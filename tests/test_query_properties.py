"""Property tests: any string is a query tree or a QueryError (never another exception,
never a tree deeper than the bounds), any pattern is an RE2 pattern or a PatternError,
and evaluating any parsed query on any text never raises, with or without the prefilter.

Each property has a generous per-example deadline: the parser and RE2 are linear, so an
example that takes seconds is a bug, not a slow machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import WatchRule
from monitor.match import Matcher
from monitor.models import Entry
from monitor.query import Analysed, And, Near, Node, Not, Or, Prefilter, QueryError, evaluate, parse_query
from monitor.query.pattern import PatternError, compile_pattern
from monitor.query.syntax import MAX_DEPTH

DEADLINE = timedelta(seconds=5)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)  # surrogates included
PIECES = st.sampled_from(
    [
        "(", ")", "AND", "OR", "NOT", "-", "NEAR/3", "NEAR/", "title:", "content:", "titel:", '"', "'",
        "=", "*", "~2", "~", "/", "\\/", "ATACMS", "prisoner exchange", "Zelensk", "Київ", "F-16",
        "a", "ab", "x", "(a+)+$", "\\1", "(?=a)", "(?<!b)", "[a-", "]", "{2,1}", "{,3}", "\\b", "\\w",
        "\\Z", "\\u00e9", "\\N{EM DASH}", "(?x)", "(?i)", "a++", "\\", "\ud800", "\x00", "  ",
    ]
)  # fmt: skip
QUERYISH = st.lists(PIECES, max_size=40).map(" ".join) | st.lists(PIECES, max_size=40).map("".join)
DEEP = st.tuples(st.integers(0, 300), st.sampled_from(["(", "NOT ", "-", "title:(", "a ("])).map(
    lambda t: t[1] * t[0] + "ATACMS" + ")" * (t[0] if "(" in t[1] else 0)
)
REGEX_PIECES = st.sampled_from(
    [
        "a", "b", "К", "(", ")", "(?:", "(?P<n>", "(?P=n)", "(?=", "(?!", "(?<=", "(?<!", "(?>", "(?#",
        "(?(1)", "(?i)", "(?x)", "(?-i:", "[", "]", "[^", "[:alpha:]", "^", "$", ".", "*", "+", "?",
        "{", "}", "{2}", "{,3}", "{1001}", "|", "\\", "\\1", "\\b", "\\B", "\\w", "\\W", "\\d", "\\s",
        "\\S", "\\Z", "\\z", "\\A", "\\u", "\\u00e9", "\\U0001F600", "\\N{", "\\N{EM DASH}", "\\x",
        "\\x{", "\\xe9", "\\p", "\\pL", "\\p{Foo}", "\\Q", "\\E", "\\0", "\\123", "\ud800", "-",
    ]
)  # fmt: skip
PATTERNS = st.lists(REGEX_PIECES, max_size=30).map("".join) | ANY_TEXT


def _depth(node: Node) -> int:
    if isinstance(node, And | Or):
        return 1 + max(_depth(child) for child in node.children)
    if isinstance(node, Not):
        return 1 + _depth(node.child)
    if isinstance(node, Near):
        return 1
    return 0


def _parsed(text: str, **options: bool) -> Node | None:
    try:
        return parse_query(text, **options)
    except QueryError as e:
        assert 0 <= e.position <= len(text), (text, e.position)
        return None


@settings(max_examples=400, deadline=DEADLINE)
@given(text=ANY_TEXT | QUERYISH | DEEP, exact=st.booleans(), case_sensitive=st.booleans())
def test_any_string_is_a_query_or_a_query_error(text: str, exact: bool, case_sensitive: bool) -> None:
    tree = _parsed(text, exact=exact, case_sensitive=case_sensitive)
    if tree is not None:
        assert _depth(tree) <= 2 * MAX_DEPTH + 1


@settings(max_examples=400, deadline=DEADLINE)
@given(pattern=PATTERNS, case_sensitive=st.booleans())
def test_any_pattern_is_re2_or_a_pattern_error(pattern: str, case_sensitive: bool) -> None:
    try:
        compiled = compile_pattern(pattern, case_sensitive=case_sensitive)
    except PatternError as e:
        assert 0 <= e.offset <= len(pattern), (pattern, e.offset)
    else:
        compiled.spans(pattern)
    _parsed(f"/{pattern}/", case_sensitive=case_sensitive)


FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "title": ANY_TEXT,
        "summary": ANY_TEXT,
        "content": ANY_TEXT | st.lists(PIECES | REGEX_PIECES, max_size=50).map(" ".join),
        "page": ANY_TEXT,
        "author": ANY_TEXT,
        "feed": ANY_TEXT,
        "link": ANY_TEXT,
    },
)


@settings(max_examples=300, deadline=DEADLINE, suppress_health_check=[HealthCheck.too_slow])
@given(
    queries=st.lists(QUERYISH | DEEP | PATTERNS.map(lambda p: f"/{p}/"), min_size=1, max_size=4),
    fields=FIELDS,
    case_sensitive=st.booleans(),
)
def test_evaluating_any_query_on_any_text_never_raises(
    queries: list[str], fields: dict[str, str], case_sensitive: bool
) -> None:
    trees = [t for t in (_parsed(q, case_sensitive=case_sensitive) for q in queries) if t is not None]
    article = Analysed(fields)  # type: ignore[arg-type]
    for tree in trees:
        evaluate(tree, article)
    Prefilter(trees).candidates(article)
    rules = [WatchRule(name=f"r{i}", query=q, notify=("c",)) for i, q in enumerate(queries) if _parsed(q)]
    entry = Entry(
        key="k",
        title=fields.get("title", ""),
        link=fields.get("link"),
        author=fields.get("author"),
        published=datetime(2024, 5, 31, tzinfo=UTC),
        summary_html="",
        summary_text=fields.get("summary", ""),
        content_html="",
        content_text=fields.get("content", ""),
    )
    assert Matcher(rules).match(entry, fields.get("feed", "")) == Matcher(rules, prefilter=False).match(
        entry, fields.get("feed", "")
    )
