"""The Aho-Corasick prefilter never changes an outcome: on random rule sets and random
articles in several languages and scripts (phrases with their language, aliases, a
feed that declares its language) the prefiltered matcher and the reference (every
rule evaluated) agree exactly, matches, terms and snippets alike. Plus the
requirements it derives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import WatchRule
from monitor.match import Matcher, article_texts
from monitor.models import Entry
from monitor.query import Analysed, Prefilter, parse_query
from monitor.query.prefilter import literals, requirement

NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)

TEXT_WORDS = [
    "Kyiv", "KYIV", "Kyïv", "Kharkiv", "ATACMS", "atacms", "ATACMSX", "strike", "strikes", "striking",
    "prisoner", "prisoners", "exchange", "exchanged", "Zelenskyy", "Zelénskyy", "Zelensky's", "US", "us",
    "opinion", "self-defense", "F-16s", "école", "e\u0301cole", "обмін", "Straße", "the", "of",
    "обміну", "полоненими", "Зеленського", "Зеленський", "АТАКМС", "Харкова", "і", "та", "що",
    "обмена", "пленными", "и", "что", "Gefangenenaustausches", "Gefangenenaustausch", "Selenskyjs",
    "der", "und", "des", "esir", "takasının", "ve", "والأسرى", "تبادل", "Budanow", "Буданова",
]  # fmt: skip
QUERY_WORDS = [
    "Kyiv", "kharkiv", "ATACMS", "strike", "prisoner", "exchange", "Zelenskyy", "US", "opinion", "self",
    "defense", "F-16", "école", "обмін", "strasse", "missing", "полоненими", "Зеленський", "Zelensky",
    "Gefangenenaustausch", "пленными", "esir", "takası", "الأسرى", "Budanov", "Харків",
]  # fmt: skip
ALIASES = {"Zelensky": ["Selenskyj", "Зеленський"], "Kharkiv": ["Харків", "Charkiw"]}
LANGUAGES = {"BBC World": "uk"}  # a feed that declares its language; the others are detected
PREFIXES = ["Zelensk*", "strik*", "exch*", "Khar*", "обм*", "ATAC*"]
REGEXES = ["/Ky.v/", "/ATACMS?/", "/F-16s?/", "/prisoners?/"]
SCOPES = ["", "", "", "title:", "summary:", "content:", "author:", "feed:", "link:"]
SEPARATORS = [" ", " ", ", ", ". ", "\n", " — ", "-", "'", " (", ") "]

words = st.sampled_from(QUERY_WORDS)
phrase = st.lists(words, min_size=1, max_size=3).map(" ".join)
operand = st.one_of(
    words,
    words.map(lambda w: "=" + w),
    phrase.map(lambda p: f'"{p}"'),
    phrase.map(lambda p: f'="{p}"'),
    st.sampled_from(PREFIXES),
)
leaf = st.one_of(
    st.tuples(st.sampled_from(SCOPES), operand).map("".join),
    st.tuples(phrase, st.integers(0, 4)).map(lambda t: f'"{t[0]}"~{t[1]}'),
    st.tuples(operand, st.integers(0, 4), operand).map(lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}"),
    st.tuples(st.sampled_from(SCOPES), st.sampled_from(REGEXES)).map("".join),
)
queries = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} AND {t[1]})"),
        inner.map(lambda q: f"-({q})"),
        inner.map(lambda q: f"NOT {q}"),
        st.tuples(st.sampled_from(["title:", "content:", "summary:"]), inner).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
    ),
    max_leaves=5,
)


@st.composite
def rules(draw: st.DrawFn) -> list[WatchRule]:
    made = []
    for i in range(draw(st.integers(1, 6))):
        options: dict[str, object] = {
            "exact": draw(st.booleans()),
            "case_sensitive": draw(st.sampled_from([False, False, True])),
            "feeds": draw(st.sampled_from([[], [], ["VOA*"]])),
        }
        if draw(st.booleans()):
            made.append(
                WatchRule.model_validate(
                    {"name": f"r{i}", "query": draw(queries), "notify": ["c"], **options}
                )
            )
        else:
            item = st.one_of(
                phrase,
                st.tuples(st.sampled_from(["uk", "ru", "de", "tr"]), phrase).map(lambda t: {t[0]: t[1]}),
            )
            lists = {k: draw(st.lists(item, max_size=2)) for k in ("any", "all", "exclude")}
            if not lists["any"] and not lists["all"]:
                lists["any"] = [draw(phrase)]
            made.append(WatchRule.model_validate({"name": f"r{i}", "notify": ["c"], **lists, **options}))
    return made


@st.composite
def texts(draw: st.DrawFn) -> str:
    chosen = draw(st.lists(st.sampled_from(TEXT_WORDS), max_size=12))
    gaps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(chosen), max_size=len(chosen)))
    noise = draw(st.sampled_from(["", "", draw(st.text(max_size=20))]))
    return noise + "".join(w + g for w, g in zip(chosen, gaps, strict=True))


@st.composite
def entries(draw: st.DrawFn) -> tuple[Entry, str]:
    summary, content = draw(texts()), draw(texts())
    entry = Entry(
        key="k",
        title=draw(texts()),
        link=draw(st.sampled_from([None, "https://www.voanews.com/a/kyiv-strikes.html"])),
        author=draw(st.sampled_from([None, "Jane Opinion", "US Desk"])),
        published=NOW,
        summary_html=summary,
        summary_text=summary,
        content_html=content,
        content_text=content,
        page_text=draw(texts()),
    )
    return entry, draw(st.sampled_from(["VOA News", "BBC World", ""]))


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(ruleset=rules(), articles=st.lists(entries(), min_size=1, max_size=4))
def test_property_prefiltered_matcher_agrees_with_evaluating_every_rule(
    ruleset: list[WatchRule], articles: list[tuple[Entry, str]]
) -> None:
    fast = Matcher(ruleset, aliases=ALIASES, languages=LANGUAGES)
    reference = Matcher(ruleset, prefilter=False, aliases=ALIASES, languages=LANGUAGES)
    for entry, feed in articles:
        assert fast.match(entry, feed) == reference.match(entry, feed)


@settings(deadline=None, max_examples=100)
@given(ruleset=rules(), article=entries())
def test_property_candidates_include_every_rule_that_holds(
    ruleset: list[WatchRule], article: tuple[Entry, str]
) -> None:
    entry, feed = article
    reference = Matcher(ruleset, prefilter=False, aliases=ALIASES, languages=LANGUAGES)
    holding = {m.rule for m in reference.match(entry, feed)}
    prefilter = Prefilter([r.tree for r in reference.rules if r.tree is not None])
    analysed = Analysed(article_texts(entry, feed), LANGUAGES.get(feed))
    candidates = {ruleset[i].name for i in prefilter.candidates(analysed)}
    assert holding <= candidates


def _literals(query: str, language: str | None = "en") -> list[list[tuple[str, str]]]:
    return [
        [lit for term in clause for lit in literals(term, language)]
        for clause in requirement(parse_query(query))
    ]


@pytest.mark.parametrize(
    ("query", "language", "clauses"),
    [
        pytest.param("atacms", "en", [[("form", " atacm ")]], id="word-form"),
        pytest.param("ATACMS", "en", [[("form", " atacm "), ("name", " Catakms ")]], id="name-also-by-key"),
        pytest.param("=ATACMS", "en", [[("fold", " atacms ")]], id="exact-word-folded"),
        pytest.param('"prisoner exchanges"', "en", [[("form", " prison exchang ")]], id="phrase"),
        pytest.param(
            "atacms kharkiv", "en", [[("form", " atacm ")], [("form", " kharkiv ")]], id="and-needs-both"
        ),
        pytest.param(
            "atacms OR himars", "en", [[("form", " atacm "), ("form", " himar ")]], id="or-needs-one"
        ),
        pytest.param("atacms -opinion", "en", [[("form", " atacm ")]], id="not-needs-nothing"),
        pytest.param("-opinion", "en", [], id="not-only-always-a-candidate"),
        pytest.param("/K.iv/", "en", [], id="regex-always-a-candidate"),
        pytest.param("/K.iv/ OR kyiv", "en", [], id="or-with-regex-always-a-candidate"),
        pytest.param("/K.iv/ kyiv", "en", [[("form", " kyiv ")]], id="and-with-regex-needs-the-word"),
        pytest.param("Zelensk*", "en", [[("fold", " zelensk")]], id="prefix-in-folded-stream"),
        pytest.param('"prisoner exch*"', "en", [[("form", " prison ")]], id="prefix-phrase-needs-its-head"),
        pytest.param("a NEAR/3 b", "en", [[("form", " a ")], [("form", " b ")]], id="near-needs-both"),
        pytest.param("(a b) OR (c d e)", "en", [[("form", " a "), ("form", " c ")]], id="or-one-clause-each"),
        pytest.param(
            '"обмін полоненими"', "uk", [[("form", " обмін полонении ")]], id="ukrainian-forms-in-ukrainian"
        ),
        pytest.param(
            '"обмін полоненими"', "ru", [[("fold", " обмін полоненими ")]], id="ukrainian-folded-elsewhere"
        ),
        pytest.param(
            "Gefangenenaustausch",
            "uk",
            [[("fold", " gefangenenaustausch "), ("name", " ChefanhenenaustauS ")]],
            id="latin-in-ukrainian-folded",
        ),
        pytest.param("prisoner", None, [[("fold", " prisoner ")]], id="unknown-language-folded"),
    ],
)
def test_requirements(query: str, language: str | None, clauses: list[list[tuple[str, str]]]) -> None:
    assert _literals(query, language) == clauses


def test_only_candidates_are_evaluated_and_order_is_config_order() -> None:
    ruleset = [
        WatchRule(name="kyiv", query="Kyiv", notify=("c",)),
        WatchRule(name="not opinion", query="-opinion", notify=("c",)),
        WatchRule(name="taiwan", any=("Taiwan",), notify=("c",)),
        WatchRule(name="atacms", all=("ATACMS",), notify=("c",)),
    ]
    matcher = Matcher(ruleset)
    entry = Entry("k", "", None, None, NOW, "", "", "ATACMS over Kyiv", "ATACMS over Kyiv")
    prefilter = Prefilter([r.tree for r in matcher.rules if r.tree is not None])
    assert prefilter.candidates(Analysed(article_texts(entry, ""))) == [0, 1, 3]
    assert [m.rule for m in matcher.match(entry, "")] == ["kyiv", "not opinion", "atacms"]
