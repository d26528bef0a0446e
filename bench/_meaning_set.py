"""The labelled set of ``python -m bench meaning`` and its vectors (embedded once, cached per text)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.semantic import segments
from monitor.semantic.calibrate import (
    LANGUAGES,
    background,
)
from monitor.semantic.embedder import Embedder, Kind

DATA = Path(__file__).resolve().parent / "data" / "meaning"
RESULTS = Path(__file__).resolve().parent / "results"
Matrix = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Article:
    """One labelled article; ``topic`` is None for the unrelated ones."""

    id: str
    language: str
    topic: str | None
    kind: str  # "pos", "dis" or "other"
    index: int
    title: str
    lead: str

    @property
    def first_pass(self) -> bool:
        """Written with the set (396 articles); the later ones add uk, pl, ar and tr cases."""
        return self.index < (2 if self.kind == "dis" else 3)

    @property
    def dev(self) -> bool:
        """One of the first three (positives, unrelated) or two (distractors) articles is dev, then
        one of each later pair; which one rotates with the language (and topic)."""
        li = LANGUAGES.index(self.language)
        rotation = li if self.topic is None else li + TOPICS.index(self.topic)
        first = 2 if self.kind == "dis" else 3
        if self.index < first:
            return self.index == rotation % first
        return (self.index - first) % 2 == rotation % 2


TOPICS = ("energy", "prisoners", "children", "floods", "oil", "rates")


def load_topics() -> dict[str, dict[str, Any]]:
    topics: dict[str, dict[str, Any]] = json.loads((DATA / "topics.json").read_text(encoding="utf-8"))
    return {name: topics[name] for name in TOPICS}


def load_articles() -> list[Article]:
    """Every labelled article, language by language."""
    articles = []
    for language in LANGUAGES:
        data = json.loads((DATA / f"{language}.json").read_text(encoding="utf-8"))
        for topic in TOPICS:
            for kind in ("pos", "dis"):
                for i, (title, lead) in enumerate(data[topic][kind]):
                    articles.append(
                        Article(f"{language}/{topic}/{kind}{i}", language, topic, kind, i, title, lead)
                    )
        for i, (title, lead) in enumerate(data["other"]):
            articles.append(Article(f"{language}/other/{i}", language, None, "other", i, title, lead))
    return articles


@dataclass
class Space:
    """Every vector the steps need, computed once (rows follow ``articles`` and ``TOPICS``)."""

    whole_p: Matrix
    whole_q: Matrix
    sentences: Matrix
    owner: npt.NDArray[np.int64]
    rule_q: Matrix
    rule_p: Matrix
    translations_q: Matrix  # (topics, languages, dim)
    background_p: Matrix
    background_q: Matrix
    background_language: npt.NDArray[np.str_]
    seconds: dict[str, float] = field(default_factory=dict)


def _texts(articles: Sequence[Article], topics: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    segs = [segments(a.title, a.lead) for a in articles]
    bg = background()
    return {
        "whole": [s.whole for s in segs],
        "sentences": [sentence for s in segs for sentence in s.sentences],
        "owner": [str(i) for i, s in enumerate(segs) for _ in s.sentences],
        "rules": [topics[t]["about"] for t in TOPICS],
        "translations": [topics[t]["translations"][lang] for t in TOPICS for lang in LANGUAGES],
        "background": [text for lang in LANGUAGES for text in bg[lang]],
        "background_language": [lang for lang in LANGUAGES for _ in bg[lang]],
    }


_GROUPS: tuple[tuple[str, str, Kind], ...] = (
    ("whole_p", "whole", "passage"),
    ("whole_q", "whole", "query"),
    ("sentences", "sentences", "passage"),
    ("rule_q", "rules", "query"),
    ("rule_p", "rules", "passage"),
    ("translations_q", "translations", "query"),
    ("background_p", "background", "passage"),
    ("background_q", "background", "query"),
)


def embed_space(embedder: Embedder, articles: Sequence[Article], cache: Path | None) -> Space:
    """Embed everything; a cache keeps each (model, kind, text) row, so an edit re-embeds only itself."""
    texts = _texts(articles, load_topics())
    known = _read_cache(cache, embedder.model_id)
    seconds: dict[str, float] = {}
    arrays: dict[str, Any] = {}
    for name, source, kind in _GROUPS:
        missing = list(dict.fromkeys(t for t in texts[source] if (kind, t) not in known))
        start = time.perf_counter()
        for text, row in zip(missing, embedder.embed(missing, kind), strict=True):
            known[(kind, text)] = row
        seconds[name] = time.perf_counter() - start
        arrays[name] = np.array([known[(kind, t)] for t in texts[source]]).reshape(len(texts[source]), -1)
    if cache is not None:
        _write_cache(cache, embedder.model_id, known)
    space = _space(arrays, texts)
    space.seconds = seconds
    return space


def _read_cache(cache: Path | None, model_id: str) -> dict[tuple[Kind, str], Any]:
    if cache is None or not cache.exists():
        return {}
    stored = np.load(cache)
    if "model" not in stored or str(stored["model"]) != model_id:
        return {}
    keys = json.loads(str(stored["keys"]))
    return {(kind, text): row for (kind, text), row in zip(keys, stored["rows"], strict=True)}


def _write_cache(cache: Path, model_id: str, known: dict[tuple[Kind, str], Any]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    keys = list(known)
    rows = np.array([known[key] for key in keys], dtype=np.float32)
    np.savez(cache, model=np.array(model_id), keys=np.array(json.dumps(keys, ensure_ascii=False)), rows=rows)


def _space(arrays: Any, texts: dict[str, list[str]]) -> Space:
    def f64(name: str) -> Matrix:
        return np.asarray(arrays[name], dtype=np.float64)

    return Space(
        whole_p=f64("whole_p"),
        whole_q=f64("whole_q"),
        sentences=f64("sentences"),
        owner=np.array([int(o) for o in texts["owner"]], dtype=np.int64),
        rule_q=f64("rule_q"),
        rule_p=f64("rule_p"),
        translations_q=f64("translations_q").reshape(len(TOPICS), len(LANGUAGES), -1),
        background_p=f64("background_p"),
        background_q=f64("background_q"),
        background_language=np.array(texts["background_language"]),
    )


@dataclass(frozen=True, slots=True)
class Labels:
    """Truth and split as arrays: ``truth[i, r]`` says article i is about topic r."""

    truth: Mask
    dev: Mask
    language: npt.NDArray[np.str_]
    rule_language: npt.NDArray[np.str_]
    keyword: Mask

    @classmethod
    def of(cls, articles: Sequence[Article], topics: dict[str, dict[str, Any]]) -> Labels:
        truth = np.array([[a.kind == "pos" and a.topic == t for t in TOPICS] for a in articles])
        keyword = np.array(
            [
                [any(k in f"{a.title} {a.lead}".lower() for k in topics[t]["keywords"]) for t in TOPICS]
                for a in articles
            ]
        )
        return cls(
            truth=truth,
            dev=np.array([a.dev for a in articles]),
            language=np.array([a.language for a in articles]),
            rule_language=np.array([topics[t]["language"] for t in TOPICS]),
            keyword=keyword,
        )
