"""User regexes on RE2: linear whatever the pattern and the text (the backtracking
classics on a 40-character title return, as does a whole page), Python's meaning kept for
``\\w \\d \\s \\Z \\uXXXX {,n}``, hits in characters of the text, and any text is searchable
(lone surrogates included)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.config import WatchRule
from monitor.match import Matcher
from monitor.models import Entry
from monitor.query import Analysed, Regex, evaluate, parse_query
from monitor.query.pattern import compile_pattern

BACKTRACKING = [
    # (pattern, whether it matches "aaa...a!")
    pytest.param("(a+)+$", False, id="nested-plus"),
    pytest.param("(a|aa)+$", False, id="overlapping-alternatives"),
    pytest.param("(a|a)*b", False, id="same-alternatives"),
    pytest.param("(x+x+)+y", False, id="adjacent-plus"),
    pytest.param(r"^(\w+\s?)+$", False, id="words-and-spaces"),
    pytest.param("(.*a){12}", True, id="counted-dot-star"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("pattern", "matches"), BACKTRACKING)
@pytest.mark.parametrize("length", [40, 100_000], ids=["40-characters", "100k-characters"])
def test_backtracking_patterns_return(pattern: str, matches: bool, length: int) -> None:
    """With Python's re each of these runs for hours on the 40-character title."""
    title = "a" * (length - 1) + "!"
    found = evaluate(parse_query(f"/{pattern}/"), Analysed({"title": title}))
    assert (found is not None) == matches


@pytest.mark.timeout(60)
def test_a_rule_with_a_backtracking_regex_and_a_40_character_title() -> None:
    rule = WatchRule(name="aaa", query="/(a+)+$/ OR ATACMS", notify=("c",))
    [found] = Matcher([rule]).match(_entry(title="a" * 39 + "!", content="ATACMS were fired"), "News")
    assert found.terms == ("ATACMS",)
    assert not Matcher([rule]).match(_entry(title="a" * 39 + "!", content="nothing"), "News")
    assert Matcher([rule]).match(_entry(title="a" * 40, content="nothing"), "News")


MEANING = [
    # (pattern, text, the matches)
    pytest.param(r"К\w+", "у Києві", ["Києві"], id="w-any-script"),
    pytest.param(r"\W+", "Київ — Харків", [" — "], id="W-any-script"),
    pytest.param(r"[\w-]+", "F-16 Зеленський", ["F-16", "Зеленський"], id="w-inside-a-class"),
    pytest.param(r"\d+", "вересня ٣ 2024", ["٣", "2024"], id="d-any-digit"),
    pytest.param(r"a\sb", "a\u00a0b a\u2009b", ["a\u00a0b", "a\u2009b"], id="s-any-space"),
    pytest.param(r"Kyiv\Z", "Kyiv visits Kyiv", ["Kyiv"], id="Z-end-of-text"),
    pytest.param(r"caf\u00e9", "au café", ["café"], id="u-escape"),
    pytest.param(r"\N{EM DASH}", "a — b", ["—"], id="N-escape"),
    pytest.param(r"ab{,2}c", "ac abbc abbbc", ["ac", "abbc"], id="brace-without-low"),
    pytest.param(r"київ", "КИЇВ", ["КИЇВ"], id="any-case-cyrillic"),
    pytest.param(r"\bF-16s?\b", "two F-16s and F-160s", ["F-16s"], id="ascii-boundary"),
    pytest.param(r"(?i)kyiv", "KYIV", ["KYIV"], id="inline-flag"),
    pytest.param(r"\pL+", "Київ", ["Київ"], id="unicode-class"),
    pytest.param(r"[[:digit:]]+", "in 2024", ["2024"], id="posix-class"),
    pytest.param(r"\Q1.5\E", "1x5 1.5", ["1.5"], id="literal-text"),
]


@pytest.mark.parametrize(("pattern", "text", "found"), MEANING)
def test_python_meaning_is_kept(pattern: str, text: str, found: list[str]) -> None:
    compiled = compile_pattern(pattern, case_sensitive=False)
    assert [text[s:e] for s, e in compiled.spans(text)] == found


def test_case_sensitive_rules_make_regex_case_count() -> None:
    tree = parse_query("/kyiv/", case_sensitive=True)
    assert evaluate(tree, Analysed({"content": "Kyiv"})) is None
    assert evaluate(tree, Analysed({"content": "kyiv"})) is not None


def test_hits_are_character_offsets_after_text_beyond_ascii() -> None:
    """RE2 searches UTF-8 bytes; the hits must be offsets in the str."""
    text = "Зеленський 😀 said ATACMS"
    tree = parse_query("/ATACMS/")
    [hit] = evaluate(tree, Analysed({"content": text})) or []
    assert (hit.start, hit.end, text[hit.start : hit.end]) == (18, 24, "ATACMS")


def test_highlights_of_a_regex_after_cyrillic_text() -> None:
    rule = WatchRule(name="r", query="/F-16s?/", notify=("c",))
    [found] = Matcher([rule]).explain(_entry(content="Зеленський: два F-16s прибули"), "")
    text = found.match.snippet.text
    assert [text[s:e] for s, e in found.match.snippet.highlights] == ["F-16s"]


def test_text_with_a_lone_surrogate_is_searched() -> None:
    """RE2 takes UTF-8, which cannot hold a surrogate: it is read as U+FFFD, one for one."""
    text = "\ud800 ATACMS \udfff"
    [hit] = evaluate(parse_query("/ATACMS/"), Analysed({"title": text})) or []
    assert (hit.start, hit.end) == (2, 8)
    assert evaluate(parse_query("/./"), Analysed({"title": "\ud800"})) is not None


def test_equal_patterns_make_equal_trees() -> None:
    assert parse_query("/K.iv/") == parse_query("/K.iv/")
    assert parse_query("/K.iv/") != parse_query("/K.iv/", case_sensitive=True)
    node = parse_query("/K.iv/")
    assert isinstance(node, Regex) and node.pattern.source == "K.iv"


def _entry(*, title: str = "t", content: str = "") -> Entry:
    return Entry(
        key="k",
        title=title,
        link="https://news.example/1",
        author=None,
        published=datetime(2024, 5, 31, tzinfo=UTC),
        summary_html="",
        summary_text="",
        content_html=content,
        content_text=content,
    )
