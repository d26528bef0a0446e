"""The config keys of rules across languages, checked with their positions (``aliases:``
cycles and empty variants, unknown language codes in ``{xx: ...}`` and a feed's
``language:``), and ``monitor rules test --text`` marking Cyrillic and German words."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.cli import main
from tests.test_config import CHANNEL, EXIT_CONFIG, _yaml, run_check

WriteConfig = Callable[[str], Path]
Capsys = pytest.CaptureFixture[str]
RULE = ("rules:", "  - name: r", "    notify: [c]")
CODES = "(languages: en, uk, ru, de, fr, es, pl, it, pt, nl, ar, tr)"
SHAPE = 'any: each item must be a phrase, or {language: "phrase"} such as {uk: "обмін полоненими"}'

BROKEN = [
    pytest.param(
        _yaml(*CHANNEL, *RULE, "    any: [ATACMS, {xx: обмін полоненими}]"),
        "config.yaml:6:20: any: unknown language 'xx' " + CODES,
        id="unknown-language-in-a-list",
    ),
    pytest.param(
        _yaml(*CHANNEL, *RULE, "    exclude: {ua: обмін досвідом}"),
        "config.yaml:4:5: rule 'r' is empty: give it 'any' or 'all' phrases, a 'query' or an 'about'\n"
        "config.yaml:6:15: exclude: unknown language 'ua' " + CODES,
        id="unknown-language-alone",
    ),
    pytest.param(
        _yaml(*CHANNEL, *RULE, "    any: [{uk: '  '}]"),
        "config.yaml:6:11: " + SHAPE,
        id="empty-language-phrase",
    ),
    pytest.param(
        _yaml(*CHANNEL, *RULE, "    any: [{uk: a, ru: b}]"),
        "config.yaml:6:11: " + SHAPE,
        id="two-languages-in-one-phrase",
    ),
    pytest.param(
        _yaml(*CHANNEL, "feeds:", "  - name: F", "    url: https://f.example/feed", "    language: UA"),
        "config.yaml:6:5: unknown language 'UA' " + CODES,
        id="unknown-feed-language",
    ),
    pytest.param(
        _yaml(*CHANNEL, "aliases:", "  Zelensky: []"),
        "config.yaml:4:3: alias 'Zelensky' lists no variants",
        id="no-variants",
    ),
    pytest.param(
        _yaml(*CHANNEL, "aliases:", "  Zelensky: [Zelenskyy, '', '--']"),
        "config.yaml:4:25: alias 'Zelensky': variant 2 is empty\n"
        "config.yaml:4:29: alias 'Zelensky': variant 3 is empty",
        id="empty-variants",
    ),
    pytest.param(
        _yaml(*CHANNEL, "aliases:", "  Zelensky: [Zelenskyy, Зеленський]", "  зеленський: [Zelensky]"),
        "config.yaml:4:25: alias cycle: Zelensky -> Зеленський -> Zelensky",
        id="cycle",
    ),
    pytest.param(
        _yaml(*CHANNEL, "aliases:", "  Zelensky:", "    - zelensky"),
        "config.yaml:5:7: alias cycle: Zelensky -> zelensky",
        id="lists-itself",
    ),
    pytest.param(
        _yaml(*CHANNEL, "aliases:", "  Zelensky: Zelenskyy"),
        "config.yaml:4:3: Zelensky: must be a list (got 'Zelenskyy')",
        id="variants-not-a-list",
    ),
]


@pytest.mark.parametrize(("document", "expected"), BROKEN)
def test_check_reports_each_mistake_at_its_key(
    document: str, expected: str, write_config: WriteConfig, capsys: Capsys
) -> None:
    code, out, problems = run_check(write_config(document), capsys)
    assert (code, out) == (EXIT_CONFIG, "")
    assert "\n".join(problems) == expected


def test_good_languages_and_aliases_pass(write_config: WriteConfig, capsys: Capsys) -> None:
    document = _yaml(
        *CHANNEL,
        "feeds:",
        "  - {name: Ukrinform, url: 'https://ukrinform.example/rss', language: uk}",
        *RULE,
        "    any: [Zelensky, {uk: обмін полоненими}, Gefangenenaustausch]",
        "aliases:",
        "  Zelensky: [Zelenskyy, Selenskyj, Зеленський, Зеленский]",
        "  Kharkiv: [Kharkov, Charkiw]",
    )
    code, _, problems = run_check(write_config(document), capsys)
    assert (code, problems) == (0, [])


CONFIG = _yaml(
    *CHANNEL,
    "rules:",
    "  - name: exchange",
    "    any: [обмін полоненими, Gefangenenaustausch]",
    "    notify: [c]",
    "  - name: Zelensky",
    "    any: [Zelensky]",
    "    notify: [c]",
    "aliases:",
    "  Zelensky: [Selenskyj, Зеленський]",
)


@pytest.mark.parametrize(
    ("rule", "text", "shown"),
    [
        pytest.param(
            "exchange",
            "Після обміну полоненими військових доправили до лікарень.",
            "  rule: exchange  matched: обмін полоненими (content)\n"
            "  Після «обміну полоненими» військових доправили до лікарень.\n\n",
            id="ukrainian",
        ),
        pytest.param(
            "exchange",
            "Nach Abschluss des Gefangenenaustausches dankte Kiew den Emiraten.",
            "  rule: exchange  matched: Gefangenenaustausch (content)\n"
            "  Nach Abschluss des «Gefangenenaustausches» dankte Kiew den Emiraten.\n\n",
            id="german-compound",
        ),
        pytest.param(
            "Zelensky",
            "Указ Зеленського і заява Selenskyjs Sprecher",
            "  rule: Zelensky  matched: Zelensky (content)\n"
            "  Указ «Зеленського» і заява «Selenskyjs» Sprecher\n\n",
            id="alias-in-two-scripts",
        ),
    ],
)
def test_rules_test_marks_words_in_other_languages(
    rule: str, text: str, shown: str, write_config: WriteConfig, capsys: Capsys
) -> None:
    assert main(["rules", "test", rule, "-c", str(write_config(CONFIG)), "--text", text]) == 0
    assert capsys.readouterr().out == shown
