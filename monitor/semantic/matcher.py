"""``about`` rules: does an article's meaning come close to a description?

Use (the caller decides which articles still need a score: only those a feed scope and
the rule's ``all``/``exclude`` terms leave; see ADR 0016 for the cost)::

    matcher = AboutMatcher(load_embedder())
    matcher.prepare([AboutRule("energy", "strikes on power plants and the energy grid")])
    vectors = matcher.embed([entry_segments(e) for e in entries])   # one batch; cache them
    scores = matcher.score(vectors[0], language="uk")               # one AboutScore a rule
    explained = matcher.explain(scores[0], entry_segments(entries[0]), vectors[0])

Scoring is pure arithmetic on cached vectors (microseconds); only :meth:`embed`,
:meth:`prepare` and :meth:`explain` run the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from monitor.semantic.calibrate import DEFAULT_MIN_SIMILARITY, Bundle, bundle_for
from monitor.semantic.codec import ArticleEmbedding
from monitor.semantic.embedder import Embedder, Vectors
from monitor.semantic.segment import SEGMENTER, Segments

T = TypeVar("T")
KEYWORD_RELIEF = 0.04
"""How far a lexical hit lowers the bar (calibrated units): tuned on dev by `python -m bench meaning`."""


@dataclass(frozen=True, slots=True)
class AboutRule:
    """One rule's ``about`` part: its description and threshold (calibrated, 0..1)."""

    name: str
    about: str
    min_similarity: float = DEFAULT_MIN_SIMILARITY
    language: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"semantic: min_similarity of rule {self.name!r} must be within 0..1")


@dataclass(frozen=True, slots=True)
class AboutScore:
    """How close one article came to one rule; ``matched`` says whether it fires."""

    rule: str
    similarity: float
    cosine: float
    threshold: float
    matched: bool
    same_language: bool = False


@dataclass(frozen=True, slots=True)
class Explanation:
    """The sentence of the article that came closest to the rule, and its similarity."""

    score: AboutScore
    sentence: str
    sentence_similarity: float
    embedding: ArticleEmbedding


@dataclass(frozen=True, slots=True, eq=False)
class _Prepared:
    rules: tuple[AboutRule, ...]
    matrix: Vectors
    languages: tuple[str | None, ...]


class AboutMatcher:
    """Scores article embeddings against the prepared ``about`` rules."""

    def __init__(self, embedder: Embedder, bundle: Bundle | None = None) -> None:
        self.embedder = embedder
        self.bundle = bundle if bundle is not None else bundle_for(embedder)
        self.tag = f"{embedder.model_id}#{SEGMENTER}"
        self._prepared = _Prepared((), np.zeros((0, embedder.dim), dtype=np.float32), ())

    @property
    def rules(self) -> tuple[AboutRule, ...]:
        return self._prepared.rules

    def prepare(self, rules: Sequence[AboutRule]) -> None:
        """Embed the descriptions (one batch); call again when the rules change."""
        matrix = self.embedder.embed([rule.about for rule in rules], "query")
        guide = self.bundle.guide
        languages = tuple(
            rule.language or guide.guess(row, "query") for rule, row in zip(rules, matrix, strict=True)
        )
        self._prepared = _Prepared(tuple(rules), matrix, languages)

    def embed(self, articles: Sequence[Segments]) -> list[ArticleEmbedding]:
        """One embedding per article (its whole passage), in one batch; cache them.

        Identical passages (the same wire story in several feeds) are embedded once.
        """
        unique = list(dict.fromkeys(article.whole for article in articles))
        rows = dict(zip(unique, self.embedder.embed(unique, "passage"), strict=True))
        return [ArticleEmbedding(self.tag, rows[article.whole]) for article in articles]

    def content_key(self, article: Segments) -> str:
        """A key for the texts this matcher embeds: equal keys, equal vectors (a cache can
        share them). The sentences count too: the cached row keeps their vectors for
        explanations, and two articles whose passages agree (the same title and first
        480 characters) can go on differently."""
        texts = "\n".join((self.tag, article.whole, *article.sentences))
        return hashlib.sha256(texts.encode()).hexdigest()[:32]

    def score(
        self,
        embedding: ArticleEmbedding,
        language: str | None = None,
        *,
        only: Collection[str] | None = None,
        lexical_hits: Collection[str] = (),
    ) -> list[AboutScore]:
        """Every prepared rule's score (or only the named ones); ``lexical_hits`` lower their bar."""
        if embedding.tag != self.tag:
            raise ValueError(f"semantic: embedding made by {embedding.tag!r}, matcher uses {self.tag!r}")
        prepared = self._prepared
        cosines = prepared.matrix @ embedding.whole
        language = language or self.bundle.guide.guess(embedding.whole, "passage")
        scores = []
        for rule, cosine, rule_language in zip(prepared.rules, cosines, prepared.languages, strict=True):
            if only is not None and rule.name not in only:
                continue
            same = language is not None and language == rule_language
            similarity = self.bundle.calibration.similarity(float(cosine), same)
            threshold = rule.min_similarity - (KEYWORD_RELIEF if rule.name in lexical_hits else 0.0)
            scores.append(
                AboutScore(rule.name, similarity, float(cosine), threshold, similarity >= threshold, same)
            )
        return scores

    def explain(self, score: AboutScore, article: Segments, embedding: ArticleEmbedding) -> Explanation:
        """The sentence that scored highest for ``score.rule`` (embeds the sentences once)."""
        if embedding.sentences is None:
            sentences = self.embedder.embed(list(article.sentences), "passage")
            embedding = embedding.with_sentences(sentences)
        assert embedding.sentences is not None
        index = self._rule_index(score.rule)
        if not len(embedding.sentences) or not article.sentences:
            return Explanation(score, article.whole, score.similarity, embedding)
        row = self._prepared.matrix[index]
        cosines = embedding.sentences @ row
        best = int(np.argmax(cosines[: len(article.sentences)]))
        similarity = self.bundle.calibration.similarity(float(cosines[best]), score.same_language)
        return Explanation(score, article.sentences[best], similarity, embedding)

    def _rule_index(self, name: str) -> int:
        for index, rule in enumerate(self._prepared.rules):
            if rule.name == name:
                return index
        raise KeyError(f"semantic: no prepared about rule named {name!r}")


def near_misses(scored: Iterable[tuple[T, AboutScore]], limit: int = 10) -> list[tuple[T, AboutScore]]:
    """The best-scoring articles that did not match, closest first (for ``rules test``)."""
    missed = [(item, score) for item, score in scored if not score.matched]
    missed.sort(key=lambda pair: pair[1].similarity, reverse=True)
    return missed[: max(0, limit)]
