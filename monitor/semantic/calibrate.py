"""From a cosine to a similarity a user can set a threshold on.

A raw cosine from multilingual-e5 means different things for different pairs: it sits
between about 0.70 and 0.90 for everything, and a description scores articles written
in its own language about 0.05 higher than equally relevant articles in another
language (ADR 0016). The calibrated similarity is::

    similarity = 1 / (1 + exp(-(weight * cosine + bias + same_language * [same language])))

fitted by logistic regression on the dev half of the bundled labelled set
(``python -m bench meaning -- --fit``); ``same_language`` is negative. Its meaning is
fixed across models and releases: 0.5 is where relevant and unrelated articles were best
told apart on that set (the default ``min_similarity``), higher is stricter.

Languages come from the caller (the article's detected language, the rule's written or
detected one); when one is missing it is guessed from the embedding itself, against
per-language centroids of the bundled background texts (``data/background.json``).
That guess is right for about 98% of articles but often wrong for a short description.

A model without a fitted calibration (another sentence-transformers model) gets the
identity: similarity = the cosine, clipped to 0..1, and ``min_similarity`` must then be
set by the user from ``monitor rules test`` near misses.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from monitor.semantic.embedder import Embedder, Kind, Vectors, unit_rows

DEFAULT_MIN_SIMILARITY = 0.5
LANGUAGES = ("en", "uk", "ru", "de", "fr", "es", "pl", "it", "pt", "nl", "ar", "tr")


@dataclass(frozen=True, slots=True)
class Calibration:
    """Logistic map from (cosine, same language) to a similarity in 0..1, for one model."""

    model_id: str
    weight: float = 1.0
    bias: float = 0.0
    same_language: float = 0.0
    fitted: bool = False

    def similarity(self, cosine: float, same_language: bool) -> float:
        """The calibrated similarity of one pair (identity on the cosine when not fitted)."""
        if not self.fitted:
            return min(1.0, max(0.0, cosine))
        z = self.weight * cosine + self.bias + (self.same_language if same_language else 0.0)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def cosine_for(self, similarity: float, same_language: bool) -> float:
        """The cosine at which a pair reaches ``similarity`` (inverse of :meth:`similarity`)."""
        if not self.fitted:
            return similarity
        p = min(1 - 1e-9, max(1e-9, similarity))
        logit = math.log(p / (1 - p))
        return (logit - self.bias - (self.same_language if same_language else 0.0)) / self.weight


@dataclass(frozen=True, slots=True, eq=False)
class LanguageGuide:
    """Per-language centroids of the background texts, for guessing a missing language."""

    centroids: Mapping[Kind, Vectors] = field(default_factory=dict)
    languages: tuple[str, ...] = LANGUAGES

    def guess(self, vector: Vectors, kind: Kind) -> str | None:
        """The language whose background centroid is nearest, or None without centroids."""
        matrix = self.centroids.get(kind)
        if matrix is None or not len(matrix) or not vector.any():
            return None
        return self.languages[int(np.argmax(matrix @ vector))]


def background() -> dict[str, list[str]]:
    """The bundled background texts by language."""
    raw = json.loads(resources.files("monitor.semantic").joinpath("data/background.json").read_text("utf-8"))
    return {lang: list(raw[lang]) for lang in LANGUAGES}


def build_guide(embedder: Embedder, texts: Mapping[str, Sequence[str]] | None = None) -> LanguageGuide:
    """Centroids from embedding the background (slow: use the bundled ones when they exist)."""
    texts = background() if texts is None else texts
    languages = tuple(texts)
    centroids: dict[Kind, Vectors] = {}
    for kind in ("query", "passage"):
        rows = [embedder.embed(list(texts[lang]), kind).mean(axis=0) for lang in languages]
        centroids[kind] = unit_rows(np.stack(rows))
    return LanguageGuide(centroids, languages)


@dataclass(frozen=True, slots=True, eq=False)
class Bundle:
    """What is bundled for one model: its calibration and its language centroids."""

    calibration: Calibration
    guide: LanguageGuide


def bundled(model_id: str) -> Bundle | None:
    """The fitted calibration and centroids shipped for ``model_id``, if any."""
    entry = _bundled_file().get(model_id)
    if entry is None:
        return None
    calibration = Calibration(
        model_id,
        weight=float(entry["weight"]),
        bias=float(entry["bias"]),
        same_language=float(entry["same_language"]),
        fitted=True,
    )
    languages = tuple(entry["languages"])
    centroids: dict[Kind, Vectors] = {
        kind: unit_rows(np.stack([_unpack(entry["centroids"][kind][lang]) for lang in languages]))
        for kind in ("query", "passage")
    }
    return Bundle(calibration, LanguageGuide(centroids, languages))


def bundle_for(embedder: Embedder) -> Bundle:
    """The bundled calibration for this embedder's model, else identity and fresh centroids."""
    found = bundled(embedder.model_id)
    if found is not None:
        return found
    return Bundle(Calibration(embedder.model_id), build_guide(embedder))


def pack(vector: Vectors) -> str:
    """A vector as base64 float16 (for ``data/calibration.json``)."""
    return base64.b64encode(np.asarray(vector, dtype="<f2").tobytes()).decode("ascii")


def _unpack(text: str) -> Vectors:
    return np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)


@cache
def _bundled_file() -> dict[str, dict[str, Any]]:
    path = resources.files("monitor.semantic").joinpath("data/calibration.json")
    if not path.is_file():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(path.read_text("utf-8"))["models"]
    return data
