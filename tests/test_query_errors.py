"""Every malformed query is refused with its message and the exact character at fault:
as an offset from the parser, as ``config.yaml:LINE:COL`` inside the query in the
file (whatever the YAML quoting), and with a caret on the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import load_settings
from monitor.config.document import read_document
from monitor.errors import ConfigError
from monitor.query import QueryError, parse_query

WriteConfig = Callable[[str], Path]

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
    pytest.param(
        "x /(a/", 3, "bad regular expression: missing ), unterminated subpattern", id="bad-regex-group"
    ),
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
