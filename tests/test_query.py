"""The query language end to end: a truth table run through the Python API and through
``monitor rules test --json`` in-process, the seed article, explanations (terms,
fields, highlights) and the shape of parsed queries (precedence)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from monitor.cli import main
from monitor.config import WatchRule
from monitor.match import CompiledRule, Matcher, make_snippet, phrase_pattern
from monitor.models import Entry
from monitor.query import And, Near, Not, Or, Regex, Term, parse_query
from monitor.query.evaluate import near_windows
from monitor.query.normalize import analyse, fold, words
from tests.test_match import voa_entry

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    """A query, an article (its content, or named fields), and whether it matches."""

    query: str
    text: str | dict[str, str]
    expected: bool
    exact: bool = False
    case_sensitive: bool = False

    def article(self) -> dict[str, str]:
        return {"content": self.text} if isinstance(self.text, str) else dict(self.text)


def case(id_: str, query: str, text: str | dict[str, str], expected: bool, **options: bool) -> object:
    return pytest.param(Case(query, text, expected, **options), id=id_)


TRUTH = [
    # words, implicit AND
    case("word", "ATACMS", "Kyiv fired ATACMS", True),
    case("word-absent", "ATACMS", "Kyiv fired missiles", False),
    case("word-whole-only", "ATACMS", "ATACMSX is made up", False),
    case("word-in-punctuation", "ATACMS", "(ATACMS)", True),
    case("side-by-side-all", "ATACMS Kharkiv", "ATACMS near Kharkiv", True),
    case("side-by-side-one-missing", "ATACMS Kharkiv", "ATACMS near Kyiv", False),
    case("side-by-side-any-order", "Kharkiv ATACMS", "ATACMS near Kharkiv", True),
    case("side-by-side-not-a-phrase", "ATACMS Kharkiv", "Kharkiv heard that ATACMS were used", True),
    # phrases
    case("phrase", '"prisoner exchange"', "a prisoner exchange", True),
    case("phrase-order", '"prisoner exchange"', "an exchange of prisoner lists", False),
    case("phrase-word-between", '"prisoner exchange"', "prisoner of exchange", False),
    case("phrase-dash-between", '"prisoner exchange"', "prisoner—exchange", True),
    case("phrase-line-break", '"prisoner exchange"', "prisoner\nexchange", True),
    case("bare-hyphenated-is-phrase", "self-defense", "a right to self defense", True),
    case("bare-hyphenated-order", "self-defense", "defense of the self", False),
    # AND, OR, NOT, -
    case("and", "ATACMS AND Kharkiv", "ATACMS hit Kharkiv", True),
    case("and-missing", "ATACMS AND Kharkiv", "ATACMS hit Kyiv", False),
    case("or-second", "ATACMS OR HIMARS", "HIMARS launched", True),
    case("or-none", "ATACMS OR HIMARS", "artillery launched", False),
    case("not-present", "ATACMS NOT opinion", "ATACMS: an opinion", False),
    case("not-absent", "ATACMS NOT opinion", "ATACMS: the news", True),
    case("minus-present", "ATACMS -opinion", "Opinion: ATACMS", False),
    case("minus-absent", "ATACMS -opinion", "News: ATACMS", True),
    case("not-only-absent", "-opinion", "news of the day", True),
    case("not-only-present", "-opinion", "an opinion", False),
    case("double-negation", "NOT -opinion", "an opinion", True),
    case("lowercase-or-is-a-word", "ATACMS or HIMARS", "ATACMS fired", False),
    case("lowercase-or-all-words", "ATACMS or HIMARS", "ATACMS or HIMARS?", True),
    case("lowercase-not-is-a-word", "ATACMS not", "not one ATACMS", True),
    # precedence: field > NEAR > NOT > AND > OR
    case("and-binds-tighter-than-or-1", "ATACMS OR HIMARS Kharkiv", "ATACMS", True),
    case("and-binds-tighter-than-or-2", "ATACMS OR HIMARS Kharkiv", "HIMARS", False),
    case("and-binds-tighter-than-or-3", "ATACMS OR HIMARS Kharkiv", "HIMARS in Kharkiv", True),
    case("explicit-and-over-or", "ATACMS AND Kharkiv OR HIMARS", "HIMARS", True),
    case("parentheses-group-or", "(ATACMS OR HIMARS) Kharkiv", "ATACMS", False),
    case("parentheses-group-or-both", "(ATACMS OR HIMARS) Kharkiv", "ATACMS in Kharkiv", True),
    case("nested-parentheses", "((ATACMS))", "ATACMS", True),
    case("not-binds-tighter-than-and", "NOT opinion ATACMS", "ATACMS", True),
    case("not-binds-tighter-than-and-2", "NOT opinion ATACMS", "opinion on ATACMS", False),
    case("not-binds-tighter-than-or", "NOT opinion OR ATACMS", "opinion on ATACMS", True),
    case("not-of-group", "NOT (opinion OR analysis) ATACMS", "analysis of ATACMS", False),
    # fields
    case("title-in-title", "title:Kyiv", {"title": "Kyiv news", "content": "x"}, True),
    case("title-not-elsewhere", "title:Kyiv", {"title": "News", "content": "Kyiv"}, False),
    case("summary-in-summary", "summary:Kyiv", {"summary": "Kyiv today", "content": "x"}, True),
    case("summary-not-in-content", "summary:Kyiv", {"summary": "today", "content": "Kyiv"}, False),
    case("content-in-content", "content:ATACMS", {"title": "x", "content": "ATACMS"}, True),
    case("content-not-in-title", "content:ATACMS", {"title": "ATACMS", "content": "x"}, False),
    case("author", "author:Smith", {"author": "Jane Smith", "content": "x"}, True),
    case("author-not-searched-unscoped", "Smith", {"author": "Jane Smith", "content": "x"}, False),
    case("feed-name", "feed:VOA", {"feed": "VOA News", "content": "x"}, True),
    case("feed-name-other", "feed:VOA", {"feed": "BBC World", "content": "x"}, False),
    case("link", "link:voanews", {"link": "https://www.voanews.com/a/1.html", "content": "x"}, True),
    case(
        "link-not-searched-unscoped", "voanews", {"link": "https://www.voanews.com/a", "content": "x"}, False
    ),
    case("field-group", "title:(Kyiv OR Kharkiv)", {"title": "Kharkiv shelled"}, True),
    case("field-phrase", 'title:"prisoner exchange"', {"title": "Prisoner exchange agreed"}, True),
    case("field-name-any-case", "Title:Kyiv", {"title": "Kyiv"}, True),
    case("minus-field", "ATACMS -title:opinion", {"title": "Opinion", "content": "ATACMS"}, False),
    case(
        "minus-field-elsewhere", "ATACMS -title:opinion", {"title": "News", "content": "ATACMS opinion"}, True
    ),
    # English word forms, exact
    case("stem-plural", '"prisoner exchange"', "prisoner exchanges", True),
    case("stem-plural-and-past", '"prisoner exchange"', "prisoners exchanged", True),
    case("stem-verb", "strike", "the striking of targets", True),
    case("stem-derived", "regional", "the region", True),
    case("exact-rule", '"prisoner exchange"', "prisoner exchanges", False, exact=True),
    case("exact-rule-same-form", '"prisoner exchange"', "Prisoner Exchange", True, exact=True),
    case("exact-phrase", '="prisoner exchange"', "prisoner exchanges", False),
    case("exact-word", "=strike", "strikes", False),
    case("exact-one-term-only", "=strike prisoners", "strike on a prisoner", True),
    case("exact-ignores-case", '="KYIV"', "kyiv", True),
    # diacritics and scripts
    case("accent-in-text", "Zelenskyy", "Zelénskyy spoke", True),
    case("accent-in-query", "Zelénskyy", "Zelenskyy spoke", True),
    case("decomposed-accent", "école", "une e\u0301cole", True),
    case("umlaut", "Munchen", "in München", True),
    case("exact-still-folds-accents", "Zelenskyy", "ZELÉNSKYY", True, exact=True),
    case("cyrillic-any-case", "Київ", "КИЇВ", True),
    case("greek-final-sigma", "σεισμός", "ΣΕΙΣΜΟΣ", True),
    # case sensitivity
    case("case-insensitive-default", "US", "send it to us", True),
    case("case-sensitive-hit", "US", "the US said", True, case_sensitive=True),
    case("case-sensitive-miss", "US", "send it to us", False, case_sensitive=True),
    case("case-sensitive-phrase", '"White House"', "white house paint", False, case_sensitive=True),
    case("case-sensitive-keeps-word-forms", "Patriot", "two Patriots", True, case_sensitive=True),
    case("case-sensitive-word-form-case", "Patriot", "two patriots", False, case_sensitive=True),
    case("case-sensitive-prefix", "Zelensk*", "zelenskyy", False, case_sensitive=True),
    case("case-sensitive-folds-accents", "Zelenskyy", "Zelénskyy", True, case_sensitive=True),
    # proximity
    case("near-within", "Stoltenberg NEAR/3 Ukraine", "Stoltenberg said that Ukraine", True),
    case("near-too-far", "Stoltenberg NEAR/1 Ukraine", "Stoltenberg said that Ukraine", False),
    case("near-any-order", "Ukraine NEAR/3 Stoltenberg", "Stoltenberg said that Ukraine", True),
    case("near-phrase-operand", '"prisoner exchange" NEAR/2 Russia', "a prisoner exchange with Russia", True),
    case("near-zero-adjacent", "ATACMS NEAR/0 Kharkiv", "Kharkiv ATACMS", True),
    case("near-same-field-only", "ATACMS NEAR/5 Kharkiv", {"title": "ATACMS", "content": "Kharkiv"}, False),
    case("near-word-forms", "strike NEAR/2 Kharkiv", "strikes on Kharkiv", True),
    case("slop-within", '"ATACMS Kharkiv"~3', "ATACMS fired near Kharkiv", True),
    case("slop-any-order", '"ATACMS Kharkiv"~3', "Kharkiv was hit by ATACMS", True),
    case("slop-too-far", '"ATACMS Kharkiv"~1', "ATACMS fired near Kharkiv", False),
    case("slop-three-words", '"Kyiv Moscow talks"~2', "talks between Kyiv and Moscow", True),
    case("slop-three-words-too-far", '"Kyiv Moscow talks"~1', "talks between Kyiv and Moscow", False),
    # prefixes
    case("prefix", "Zelensk*", "Zelenskyy spoke", True),
    case("prefix-other-spelling", "Zelensk*", "Zelensky's office", True),
    case("prefix-not-inside-word", "Zelensk*", "AntiZelensky", False),
    case("prefix-whole-word", "Zelensk*", "Zelensk", True),
    case("prefix-accents", "Zelensk*", "Zelénskyy", True),
    case("prefix-last-word-of-phrase", '"prisoner exch*"', "prisoner exchanges", True),
    case("prefix-last-word-of-phrase-other", '"prisoner exch*"', "prisoner swaps", False),
    case("prefix-in-field", "title:Zelensk*", {"title": "Zelenskyy visits", "content": "x"}, True),
    # regular expressions
    case("regex", "/AT[A-Z]CMS/", "ATACMS", True),
    case("regex-any-case", "/atacms/", "ATACMS", True),
    case("regex-case-sensitive-rule", "/atacms/", "ATACMS", False, case_sensitive=True),
    case("regex-anchored-in-field", "title:/^Breaking/", {"title": "Breaking: Kyiv", "content": "x"}, True),
    case("regex-no-match", r"/\bF-16s?\b/", "F-35 jets", False),
    case("regex-with-word", "ATACMS /Kh?arkiv/", "ATACMS over Karkiv", True),
    case("regex-sees-text-as-written", "/Zelenskyy/", "Zelénskyy", False),
]


def _entry(article: dict[str, str]) -> Entry:
    return Entry(
        key="k",
        title=article.get("title", ""),
        link=article.get("link"),
        author=article.get("author"),
        published=NOW,
        summary_html=article.get("summary", ""),
        summary_text=article.get("summary", ""),
        content_html=article.get("content", ""),
        content_text=article.get("content", ""),
    )


def _rule(c: Case) -> WatchRule:
    return WatchRule(name="q", query=c.query, exact=c.exact, case_sensitive=c.case_sensitive, notify=("c",))


def test_truth_table_is_large_enough() -> None:
    assert len(TRUTH) >= 80


@pytest.mark.parametrize("c", TRUTH)
def test_truth_table_python_api(c: Case) -> None:
    article = c.article()
    found = Matcher([_rule(c)]).match(_entry(article), article.get("feed", ""))
    assert bool(found) is c.expected


@pytest.mark.parametrize("c", TRUTH)
def test_truth_table_command_line(c: Case, capsys: pytest.CaptureFixture[str]) -> None:
    article = c.article()
    argv = ["rules", "test", "--json", f"--query={c.query}", f"--text={article.get('content', '')}"]
    for name, flag in [("title", "--title"), ("summary", "--summary"), ("author", "--author")]:
        if name in article:
            argv.append(f"{flag}={article[name]}")
    if "link" in article:
        argv.append(f"--link={article['link']}")
    if "feed" in article:
        argv.append(f"--feed-name={article['feed']}")
    argv += ["--exact"] * c.exact + ["--case-sensitive"] * c.case_sensitive
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert bool(lines) is c.expected
    for line in lines:
        assert line["rule"] == c.query and line["article"] is None
        assert set(line) == {"rule", "article", "field", "terms", "where", "snippet"}


# --- the seed article ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected", "terms"),
    [
        pytest.param('"prisoner exchange"', True, ["prisoner exchange"], id="prisoner-exchange"),
        pytest.param("ATACMS", True, ["ATACMS"], id="atacms"),
        pytest.param(
            '"Stoltenberg" NEAR/20 "self-defense"', True, ["Stoltenberg", "self-defense"], id="near"
        ),
        pytest.param('"prisoner exchange" -Zelenskyy', False, [], id="excluded-by-zelenskyy"),
    ],
)
def test_seed_article(query: str, expected: bool, terms: list[str]) -> None:
    rule = WatchRule(name="seed", query=query, notify=("c",))
    found = Matcher([rule]).match(voa_entry(), "VOA News")
    assert bool(found) is expected
    if found:
        [match] = found
        assert list(match.terms) == terms
        assert match.field == "content"
        marked = [match.snippet.text[s:e] for s, e in match.snippet.highlights]
        assert {fold(" ".join(words(m))) for m in marked} >= {fold(" ".join(words(t))) for t in terms[:1]}


def test_seed_article_from_a_file_on_the_command_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    article = voa_entry()
    path = tmp_path / "article.txt"
    path.write_text(article.content_text, encoding="utf-8")
    assert (
        main(
            [
                "rules",
                "test",
                "--json",
                "--query",
                '"Stoltenberg" NEAR/20 "self-defense"',
                "--file",
                str(path),
            ]
        )
        == 0
    )
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["terms"] == ["Stoltenberg", "self-defense"]
    assert line["where"] == {"Stoltenberg": ["content"], "self-defense": ["content"]}
    assert "«Stoltenberg»" in line["snippet"]["marked"]


# --- explanations ----------------------------------------------------------------


def _explain(query: str, **article: str):
    rule = WatchRule(name="r", query=query, notify=("c",))
    [found] = Matcher([rule]).explain(_entry(article), article.get("feed", ""))
    return found


def test_terms_are_the_matched_ones_in_query_order() -> None:
    found = _explain("(Kharkiv OR Taiwan) ATACMS -opinion", title="ATACMS", content="Kharkiv and ATACMS")
    assert found.match.terms == ("Kharkiv", "ATACMS")
    assert found.where() == {"Kharkiv": ["content"], "ATACMS": ["content", "title"]}


def test_a_failed_branch_is_never_highlighted() -> None:
    found = _explain("(Kyiv Taiwan) OR ATACMS", content="Kyiv fired ATACMS")
    assert found.match.terms == ("ATACMS",)
    text = found.match.snippet.text
    assert [text[s:e] for s, e in found.match.snippet.highlights] == ["ATACMS"]


def test_highlights_cover_word_forms_and_accents() -> None:
    found = _explain(
        '"prisoner exchange" Zelenskyy', content="Zelénskyy: prisoners exchanged, Prisoner-Exchange"
    )
    text = found.match.snippet.text
    assert [text[s:e] for s, e in found.match.snippet.highlights] == [
        "Zelénskyy",
        "prisoners exchanged",
        "Prisoner-Exchange",
    ]


def test_near_highlights_only_the_close_pair() -> None:
    found = _explain("ATACMS NEAR/1 Kharkiv", content="ATACMS far away from here. ATACMS on Kharkiv.")
    text = found.match.snippet.text
    assert [(text[s:e], s) for s, e in found.match.snippet.highlights] == [("ATACMS", 27), ("Kharkiv", 37)]


def test_regex_highlights_its_match() -> None:
    found = _explain("/F-16s?/", content="two F-16s landed")
    assert found.match.snippet.highlights == ((4, 9),)
    assert found.match.terms == ("/F-16s?/",)


def test_a_rule_of_nots_only_shows_the_start_of_the_text() -> None:
    found = _explain("-opinion", title="Kyiv", summary="News of the day")
    assert (found.match.field, found.match.terms) == ("summary", ())
    assert found.match.snippet.text == "News of the day" and found.match.snippet.highlights == ()


def test_a_match_in_the_author_only_quotes_the_author() -> None:
    found = _explain("author:Smith", author="Jane Smith", content="Nothing here")
    assert (found.match.field, found.match.snippet.text, found.match.snippet.highlights) == (
        "author",
        "Jane Smith",
        ((5, 10),),
    )


def test_content_scope_covers_the_page_text() -> None:
    entry = Entry("k", "", None, None, NOW, "", "", "", "", page_text="ATACMS on the page")
    rule = WatchRule(name="r", query="content:ATACMS", notify=("c",))
    [found] = Matcher([rule]).match(entry, "")
    assert found.field == "page"


# --- what the parser builds ------------------------------------------------------


def _shape(node: object) -> object:
    """A compact form of a tree: terms as their labels."""
    if isinstance(node, Term | Regex):
        return node.label
    if isinstance(node, Not):
        return ("NOT", _shape(node.child))
    if isinstance(node, Near):
        return ("NEAR", node.distance, *[_shape(t) for t in node.operands])
    if isinstance(node, And | Or):
        return (type(node).__name__.upper(), *[_shape(c) for c in node.children])
    raise AssertionError(node)


@pytest.mark.parametrize(
    ("query", "shape"),
    [
        pytest.param("a b c", ("AND", "a", "b", "c"), id="implicit-and"),
        pytest.param("a OR b c", ("OR", "a", ("AND", "b", "c")), id="and-over-or"),
        pytest.param("a b OR c", ("OR", ("AND", "a", "b"), "c"), id="and-over-or-left"),
        pytest.param("(a OR b) c", ("AND", ("OR", "a", "b"), "c"), id="parentheses"),
        pytest.param("-a b", ("AND", ("NOT", "a"), "b"), id="minus"),
        pytest.param("NOT a OR b", ("OR", ("NOT", "a"), "b"), id="not-over-or"),
        pytest.param("NOT a NEAR/3 b", ("NOT", ("NEAR", 3, "a", "b")), id="near-over-not"),
        pytest.param('"a b"~4', ("NEAR", 4, "a", "b"), id="slop"),
        pytest.param('"a b"', "a b", id="phrase"),
        pytest.param("a AND b AND c", ("AND", "a", "b", "c"), id="explicit-and"),
        pytest.param("a OR b OR c", ("OR", "a", "b", "c"), id="or-chain"),
        pytest.param("NOT NOT a", ("NOT", ("NOT", "a")), id="double-not"),
        pytest.param("Zelensk* /x+y/", ("AND", "Zelensk*", "/x+y/"), id="prefix-and-regex"),
    ],
)
def test_precedence_and_shape(query: str, shape: object) -> None:
    assert _shape(parse_query(query)) == shape


def test_field_scope_reaches_every_leaf_of_its_group() -> None:
    tree = parse_query("title:(a OR (b -c)) d")
    assert isinstance(tree, And) and isinstance(tree.children[0], Or)
    inner = tree.children[0]
    leaves = [inner.children[0], inner.children[1].children[0], inner.children[1].children[1].child]  # type: ignore[union-attr]
    assert [leaf.fields for leaf in leaves] == [("title",)] * 3  # type: ignore[union-attr]
    assert tree.children[1].fields == ("title", "summary", "content", "page")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("word", "folded", "stem"),
    [
        pytest.param("Zelénskyy", "zelenskyy", "zelenskyy", id="accent"),
        pytest.param("EXCHANGES", "exchanges", "exchang", id="upper-plural"),
        pytest.param("Straße", "strasse", "strass", id="sharp-s"),
        pytest.param("ﬁre", "fire", "fire", id="ligature"),
    ],
)
def test_normalisation(word: str, folded: str, stem: str) -> None:
    assert analyse(word) == (folded, stem)


def test_compiled_rule_and_snippet_helpers_keep_their_surface() -> None:
    rule = CompiledRule.compile(
        WatchRule(name="r", any=("prisoner exchange",), feeds=("VOA*",), notify=("c",))
    )
    entry = _entry({"content": "a prisoners exchange"})
    found = rule.evaluate(entry)
    assert found is not None and found.terms == ("prisoner exchange",)
    assert rule.evaluate(_entry({"content": "nothing"})) is None
    assert (rule.applies_to("voa news"), rule.applies_to("BBC")) == (True, False)
    snippet = make_snippet("Kyiv fired ATACMS", 11, 17, [phrase_pattern("atacms"), phrase_pattern("kyiv")])
    assert snippet.highlights == ((0, 4), (11, 17))


def test_readme_examples_load_and_the_seed_article_matches_them() -> None:
    """The rules a journalist copies from "Writing rules" are valid and do what they say."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Writing rules", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    data = YAML(typ="safe").load(block)
    rules = [WatchRule.model_validate({**r, "notify": ["c"]}) for r in data["rules"]]
    assert len(rules) >= 8
    found = {m.rule for m in Matcher(rules).match(voa_entry(), "VOA News")}
    assert {"prisoner exchange", "ATACMS, news only", "NATO chief on self-defense"} <= found
    assert "F-16 deliveries" not in found


@settings(deadline=None, max_examples=200)
@given(
    lengths=st.lists(st.integers(1, 3), min_size=2, max_size=3),
    starts=st.data(),
    distance=st.integers(0, 6),
)
def test_property_near_agrees_with_trying_every_combination(
    lengths: list[int], starts: st.DataObject, distance: int
) -> None:
    found = [
        sorted({(s, s + n) for s in starts.draw(st.lists(st.integers(0, 20), min_size=1, max_size=4))})
        for n in lengths
    ]
    brute = any(
        (max(e for _, e in combo) - min(s for s, _ in combo)) - sum(e - s for s, e in combo) <= distance
        for combo in product(*found)
    )
    assert bool(near_windows(found, distance)) is brute
