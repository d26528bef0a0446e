"""Every malformed query is refused with its message and the exact character at fault:
as an offset from the parser, as ``config.yaml:LINE:COL`` inside the query in the
file (whatever the YAML quoting), and with a caret on the command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import load_settings
from monitor.config.document import read_document
from monitor.errors import ConfigError
from monitor.query import QueryError, parse_query

WriteConfig = Callable[[str], Path]
DEEP = "the query nests deeper than 32 levels of parentheses and NOT; write it flatter"
BACKREF = "back references such as {} are not supported; write the repeated text itself"
LOOK = (
    "{} is not supported (RE2 matches in linear time); to leave out articles that mention something, "
    'add it with NOT, as in /Kyiv/ NOT "Kyiv Post"'
)
POSSESSIVE = "possessive quantifiers (*+, ++, ?+) are not supported; write * or + (RE2 never backtracks)"
BOUNDARY = (
    "\\b and \\B know only ASCII letters in RE2, so they cannot mark the edge of a word in other scripts "
    'or of \\w; find whole words with a query word or phrase instead (Київ, "prisoner exchange")'
)

ERRORS = [
    # (query, offset of the fault, message)
    pytest.param(
        '("prisoner exchange" OR swap', 0, "unbalanced parenthesis: this '(' is never closed", id="open-paren"
    ),
    pytest.param(
        "(ATACMS OR (HIMARS)", 0, "unbalanced parenthesis: this '(' is never closed", id="outer-paren"
    ),
    pytest.param("ATACMS)", 6, "unbalanced parenthesis: this ')' has no matching '('", id="close-paren"),
    pytest.param("(a) b)", 5, "unbalanced parenthesis: this ')' has no matching '('", id="extra-close"),
    pytest.param("()", 1, "empty parentheses", id="empty-parens"),
    pytest.param('"prisoner exchange', 0, "this quote is never closed", id="open-quote"),
    pytest.param('ATACMS "prisoner', 7, "this quote is never closed", id="open-quote-later"),
    pytest.param('""', 1, "'' has no letters or digits to match", id="empty-phrase"),
    pytest.param("ATACMS &", 7, "'&' has no letters or digits to match", id="no-letters"),
    pytest.param("=", 0, "'=' has no letters or digits to match", id="lone-equals"),
    pytest.param("/ATACMS", 0, "this /regular expression/ is never closed", id="open-regex"),
    pytest.param("/AT[A-Z/", 3, "bad regular expression: unterminated character set", id="bad-regex-set"),
    pytest.param("x /(a/", 3, "bad regular expression: this '(' is never closed", id="bad-regex-group"),
    pytest.param("ATACMS //", 7, "empty regular expression", id="empty-regex"),
    pytest.param(
        "/x*/",
        0,
        "this regular expression matches empty text, so it would match every article",
        id="empty-match",
    ),
    pytest.param("ATACMS AND", 7, "AND needs a term after it", id="and-at-end"),
    pytest.param("AND ATACMS", 0, "AND needs a term before it", id="and-at-start"),
    pytest.param("ATACMS OR", 7, "OR needs a term after it", id="or-at-end"),
    pytest.param("OR ATACMS", 0, "OR needs a term before it", id="or-at-start"),
    pytest.param("ATACMS OR OR HIMARS", 7, "OR needs a term after it", id="or-or"),
    pytest.param("(ATACMS OR) HIMARS", 8, "OR needs a term after it", id="or-before-paren"),
    pytest.param("ATACMS NOT", 7, "NOT needs a term after it", id="not-at-end"),
    pytest.param("ATACMS -", 7, "'-' must be followed directly by a term, as in -opinion", id="minus-at-end"),
    pytest.param(
        "ATACMS - opinion", 7, "'-' must be followed directly by a term, as in -opinion", id="minus-space"
    ),
    pytest.param(
        "titel:Kyiv",
        0,
        "unknown field 'titel:' (did you mean 'title:'? fields: title:, summary:, content:, author:, feed:, "
        "link:); to search for the text itself, put it in quotes",
        id="unknown-field",
    ),
    pytest.param(
        "title: Kyiv",
        6,
        "title: needs a word, a quoted phrase, a /regex/ or (...) right after the colon",
        id="space-after-field",
    ),
    pytest.param(
        "Kyiv title:",
        11,
        "title: needs a word, a quoted phrase, a /regex/ or (...) right after the colon",
        id="field-at-end",
    ),
    pytest.param(
        "title:-x",
        6,
        "title: needs a word, a quoted phrase, a /regex/ or (...) right after the colon",
        id="field-minus",
    ),
    pytest.param(
        "ATACMS NEAR Kharkiv", 7, "write NEAR with a number of words, as in NEAR/10", id="near-no-number"
    ),
    pytest.param(
        "ATACMS NEAR/x Kharkiv", 7, "write NEAR with a number of words, as in NEAR/10", id="near-bad-number"
    ),
    pytest.param("NEAR/5 Kharkiv", 0, "NEAR/5 needs a term before it", id="near-at-start"),
    pytest.param("ATACMS NEAR/5", 7, "NEAR/5 needs a word or a quoted phrase after it", id="near-at-end"),
    pytest.param("(a OR b) NEAR/5 c", 9, "NEAR/5 works between two words or quoted phrases", id="near-group"),
    pytest.param("a NEAR/5 b NEAR/5 c", 11, "one NEAR at a time: join the others with AND", id="near-chain"),
    pytest.param(
        "title:a NEAR/5 author:b", 8, "the two sides of NEAR/5 search different fields", id="near-fields"
    ),
    pytest.param('"a b"~', 5, '~ needs a number of words, as in "ATACMS Kharkiv"~10', id="slop-no-number"),
    pytest.param("Kharkiv~2", 7, '~N works on a quoted phrase, as in "ATACMS Kharkiv"~10', id="slop-on-word"),
    pytest.param("Zel*nsky", 3, "'*' works only at the end of a word, as in Zelensk*", id="star-inside"),
    pytest.param("*", 0, "'*' works only at the end of a word, as in Zelensk*", id="star-alone"),
    pytest.param("Ze*", 0, "the prefix 'Ze*' is too short (at least 3 letters)", id="short-prefix"),
    # bounds: the parser, the evaluator and the prefilter are recursive
    pytest.param("(" * 5000 + "a" + ")" * 5000, 32, DEEP, id="5000-parentheses"),
    pytest.param("NOT " * 1000 + "a", 128, DEEP, id="1000-nots"),
    pytest.param("-" * 5000 + "a", 32, DEEP, id="5000-minuses"),
    pytest.param("a (b " * 40 + ")" * 40, 2 + 5 * 32, DEEP, id="nested-ands"),
    pytest.param("title:(" * 40 + "a" + ")" * 40, 6 + 7 * 32, DEEP, id="nested-scopes"),
    pytest.param(
        "a OR " * 4000 + "b", 20_000, "a query may be at most 20,000 characters long", id="too-long"
    ),
    # regular expressions run by RE2: what it lacks is refused with what to write instead
    pytest.param(r"/(a)\1/", 4, BACKREF.format(r"\1"), id="regex-backreference"),
    pytest.param("/(?P<w>a)(?P=w)/", 9, BACKREF.format("(?P=name)"), id="regex-named-backreference"),
    pytest.param("/Kyiv(?= Post)/", 5, LOOK.format("lookahead (?=...)"), id="regex-lookahead"),
    pytest.param("/Kyiv(?! Post)/", 5, LOOK.format("lookahead (?!...)"), id="regex-negative-lookahead"),
    pytest.param("/(?<=in )Kyiv/", 1, LOOK.format("lookbehind (?<=...)"), id="regex-lookbehind"),
    pytest.param("/(?<!in )Kyiv/", 1, LOOK.format("lookbehind (?<!...)"), id="regex-negative-lookbehind"),
    pytest.param(
        "/(?>a+)b/",
        1,
        "atomic groups (?>...) are not supported (RE2 never backtracks); write (?:...)",
        id="regex-atomic",
    ),
    pytest.param("/a++b/", 2, POSSESSIVE, id="regex-possessive"),
    pytest.param("/a{2,3}+b/", 2, POSSESSIVE, id="regex-possessive-count"),
    pytest.param("/(?#note)a/", 1, "comments (?#...) are not supported; remove it", id="regex-comment"),
    pytest.param(
        "/(a)?(?(1)b|c)/",
        5,
        "conditional groups (?(...)...) are not supported; write two rules or an OR of two regexes",
        id="regex-conditional",
    ),
    pytest.param(
        "/(?x) a b/", 3, "the flag 'x' is not supported; RE2 takes i, m, s and U", id="regex-verbose"
    ),
    pytest.param(r"/\bКиїв\b/", 1, BOUNDARY, id="regex-boundary-cyrillic"),
    pytest.param(r"/\b\w+ski\b/", 1, BOUNDARY, id="regex-boundary-unicode-word"),
    pytest.param(
        r"/[\W]/",
        2,
        r"\W inside [...] is not supported; write it outside the brackets, as in (?:[...]|\W)",
        id="regex-negated-class-inside",
    ),
    pytest.param(r"/caf\u0e9/", 4, r"\u needs 4 hexadecimal digits, as in \u00e9", id="regex-short-u"),
    pytest.param(
        r"/\N{NO SUCH}/", 1, r"\N needs a Unicode character name, as in \N{EM DASH}", id="regex-bad-name"
    ),
    pytest.param(
        "/" + "(" * 33 + "a" + ")" * 33 + "/", 33, "groups nested deeper than 32 levels", id="regex-deep"
    ),
    pytest.param(
        "/" + "a" * 1001 + "/",
        1001,
        "a regular expression may be at most 1,000 characters long",
        id="regex-long",
    ),
    pytest.param("/a)/", 2, "bad regular expression: this ')' has no matching '('", id="regex-close-paren"),
    pytest.param(
        "/a**/", 2, "bad regular expression: two repetition operators in a row: **", id="regex-double-star"
    ),
    pytest.param(
        "/*a/", 1, "bad regular expression: nothing to repeat before *", id="regex-nothing-to-repeat"
    ),
    pytest.param(
        "/a{1001}/",
        2,
        "bad regular expression: a repetition count is over 1000, or {m,n} has m > n: {1001}",
        id="regex-count",
    ),
    pytest.param("/x[b-a]/", 3, "bad regular expression: bad character class or range b-a", id="regex-range"),
    pytest.param(r"/x\pQ/", 2, r"bad regular expression: bad character class or range \pQ", id="regex-class"),
    pytest.param(r"/\q/", 1, r"bad regular expression: unknown escape \q", id="regex-escape"),
]


@pytest.mark.parametrize(("query", "offset", "message"), ERRORS)
def test_parser_reports_the_character_at_fault(query: str, offset: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert (caught.value.message, caught.value.position) == (message, offset)


def test_empty_query() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("   ")
    assert (caught.value.message, caught.value.position) == ("empty query", 0)


HEAD = 'channels:\n  c: "json://127.0.0.1:9/x"\nrules:\n  - name: r\n'


@pytest.mark.parametrize(("query", "offset", "message"), ERRORS)
def test_config_points_inside_the_query(
    write_config: WriteConfig, query: str, offset: int, message: str
) -> None:
    quoted = "'" + query.replace("'", "''") + "'"
    path = write_config(HEAD + f"    query: {quoted}\n    notify: [c]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    # line 5 is "    query: '...": the query's first character is in column 13
    assert str(caught.value) == f"{path}:5:{13 + offset}: query: {message}"


@pytest.mark.parametrize(
    ("yaml", "line", "column"),
    [
        pytest.param("    query: ATACMS OR (HIMARS\n", 5, 22, id="plain"),
        pytest.param("    query: 'it''s (HIMARS'\n", 5, 19, id="single-quoted-with-doubled-quote"),
        pytest.param('    query: "\\"a\\" OR (b"\n', 5, 22, id="double-quoted-with-escapes"),
        pytest.param('    query: "\\u00e9t\\u00e9 (b"\n', 5, 27, id="double-quoted-unicode-escapes"),
        pytest.param("    query: >-\n      ATACMS OR\n      (HIMARS\n", 7, 7, id="folded-block"),
        pytest.param("    query: |-\n      ATACMS OR\n      (HIMARS\n", 7, 7, id="literal-block"),
        pytest.param("    query: ATACMS OR\n      (HIMARS\n", 6, 7, id="plain-over-two-lines"),
        pytest.param("    query: >-\n      ATACMS OR\n\n      (HIMARS\n", 8, 7, id="folded-with-blank-line"),
        pytest.param('    query: "ATACMS OR \\\n      (HIMARS"\n', 6, 7, id="double-quoted-escaped-break"),
        pytest.param("    query:   '  (HIMARS'\n", 5, 17, id="spaces-inside-quotes"),
    ],
)
def test_config_position_whatever_the_quoting(
    write_config: WriteConfig, yaml: str, line: int, column: int
) -> None:
    path = write_config(HEAD + yaml + "    notify: [c]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = "query: unbalanced parenthesis: this '(' is never closed"
    assert str(caught.value) == f"{path}:{line}:{column}: {message}"


def test_config_in_a_flow_mapping(write_config: WriteConfig) -> None:
    path = write_config(HEAD.replace("  - name: r\n", "") + '  - {name: r, query: "a OR", notify: [c]}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == f"{path}:4:25: query: OR needs a term after it"


def test_config_reports_every_bad_query_with_the_other_mistakes(write_config: WriteConfig) -> None:
    text = (
        HEAD
        + "    query: '(a'\n    notify: [c]\n"
        + "  - name: s\n    query: 'b OR'\n    exact: maybe\n    notify: [c]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(text))
    assert [str(p).split(":", 1)[1] for p in caught.value.problems] == [
        "9:5: exact: must be true or false (got 'maybe')",
    ]
    fixed = text.replace("maybe", "true")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(fixed))
    assert [str(p).split(":", 1)[1] for p in caught.value.problems] == [
        "5:13: query: unbalanced parenthesis: this '(' is never closed",
        "8:15: query: OR needs a term after it",
    ]


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        pytest.param("    query: ''\n", "6:5: query: must not be empty (got '')", id="empty"),
        pytest.param("    query: [a, b]\n", "6:5: query: must be text (got a list)", id="list"),
    ],
)
def test_query_must_be_text(write_config: WriteConfig, yaml: str, message: str) -> None:
    path = write_config(HEAD + "    any: [x]\n" + yaml + "    notify: [c]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == f"{path}:{message}"


def test_a_rule_with_only_a_query_is_valid(write_config: WriteConfig) -> None:
    path = write_config(
        HEAD + "    query: '\"prisoner exchange\" -Zelenskyy'\n    exact: true\n    notify: [c]\n"
    )
    [rule] = load_settings(path).rules
    assert (rule.query, rule.exact, rule.case_sensitive, rule.any) == (
        '"prisoner exchange" -Zelenskyy',
        True,
        False,
        (),
    )


def test_command_line_points_at_the_fault(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", "--query", 'ATACMS ("prisoner exchange" OR swap', "--text", "x"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "monitor: --query:1:8: unbalanced parenthesis: this '(' is never closed\n"
        '  ATACMS ("prisoner exchange" OR swap\n'
        "         ^\n"
    )


def test_position_inside_a_list_item(write_config: WriteConfig) -> None:
    path = write_config(HEAD + "    any: [ATACMS, 'prisoner  exchange']\n    notify: [c]\n")
    doc = read_document(path)
    problem = doc.problem_inside(("rules", 0, "any", 1), 10, "here")
    assert (problem.line, problem.column) == (5, 30)
    assert doc.problem_inside(("rules", 0, "notify"), 0, "not text").column == 5  # a list: the key itself


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("(" * 5000 + "ATACMS" + ")" * 5000, id="parentheses"),
        pytest.param("-" * 5000 + "ATACMS", id="minuses"),
        pytest.param("NOT " * 4000 + "ATACMS", id="nots"),
    ],
)
def test_check_refuses_a_query_nested_5000_deep(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], query: str
) -> None:
    path = write_config(HEAD + f"    query: '{query}'\n    notify: [c]\n")
    assert main(["check", "-c", str(path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}:5:")
    assert line.endswith(
        "query: the query nests deeper than 32 levels of parentheses and NOT; write it flatter"
    )


@pytest.mark.parametrize("query", ["/a\ud800/", "ATACMS\udcff", "AND\ud800"])
def test_a_lone_surrogate_is_refused(query: str) -> None:
    """Not a character: a command line that is not UTF-8 gives them (``\\udcff``)."""
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    where = next(i for i, c in enumerate(query) if "\ud800" <= c <= "\udfff")
    assert caught.value.message == f"{query[where]!a} is a lone surrogate, not a character"
    assert caught.value.position == where


def test_rules_test_refuses_a_query_that_is_not_utf_8() -> None:
    """The byte 0xff on a command line arrives as ``\\udcff``: exit 2 with a caret, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "rules", "test", "--query", "ATACMS\udcff", "--text", "x"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode("utf-8", "backslashreplace").splitlines() == [
        "monitor: --query:1:7: '\\udcff' is a lone surrogate, not a character",
        "  ATACMS\\udcff",
        "        ^",
    ]
