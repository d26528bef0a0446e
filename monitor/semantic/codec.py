"""An article's embeddings as bytes, for the store's cache column.

Layout (little-endian)::

    b"ME" | format (1 byte) | tag length (1) | tag (UTF-8) | flags (1) | rows (u16) | dim (u16)
          | rows x dim float16

Row 0 is the whole passage; rows 1.. the sentences when ``flags & 1`` (they are computed
only to explain a match). float16 keeps about three decimal digits of each component,
far below what moves a score (the round-trip test measures it): 384 dimensions take
768 bytes a row. The tag names the model and the segmenter: a blob with another tag
decodes to ``None``, so a model change recomputes instead of comparing unlike vectors.
A damaged blob also decodes to ``None``: a cache is never a reason to fail.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from monitor.semantic.embedder import Vectors

MAGIC = b"ME"
FORMAT = 1
_HEAD = struct.Struct("<BHH")
_HAS_SENTENCES = 1


@dataclass(frozen=True, slots=True, eq=False)
class ArticleEmbedding:
    """The vectors of one article: ``whole`` decides, ``sentences`` (optional) explain."""

    tag: str
    whole: Vectors
    sentences: Vectors | None = None

    def with_sentences(self, sentences: Vectors) -> ArticleEmbedding:
        """The same article with its sentence vectors added."""
        return ArticleEmbedding(self.tag, self.whole, sentences)


def encode(embedding: ArticleEmbedding) -> bytes:
    """Compact bytes for the cache (float16)."""
    tag = embedding.tag.encode("utf-8")
    if len(tag) > 255:
        raise ValueError("semantic: embedding tag longer than 255 bytes")
    rows = [embedding.whole.reshape(1, -1)]
    flags = 0
    if embedding.sentences is not None:
        flags = _HAS_SENTENCES
        rows.append(embedding.sentences.reshape(-1, embedding.whole.shape[-1]))
    matrix = np.concatenate(rows).astype("<f2")
    head = MAGIC + bytes([FORMAT, len(tag)]) + tag + _HEAD.pack(flags, matrix.shape[0], matrix.shape[1])
    return head + matrix.tobytes()


def decode(blob: bytes, tag: str, dim: int | None = None) -> ArticleEmbedding | None:
    """The embedding in ``blob`` if it was made with ``tag`` (and has ``dim`` columns);
    ``None`` if not, or if damaged: a row of another size would fail the whole batch it
    is scored in, every time, however its tag came to match."""
    if len(blob) < 4 or blob[:2] != MAGIC or blob[2] != FORMAT:
        return None
    end = 4 + blob[3]
    if blob[4:end] != tag.encode("utf-8") or len(blob) < end + _HEAD.size:
        return None
    flags, rows, width = _HEAD.unpack_from(blob, end)
    body = blob[end + _HEAD.size :]
    if rows < 1 or width < 1 or len(body) != rows * width * 2 or (rows > 1 and not flags & _HAS_SENTENCES):
        return None
    if dim is not None and width != dim:
        return None
    matrix = np.frombuffer(body, dtype="<f2").reshape(rows, width).astype(np.float32)
    if not np.isfinite(matrix).all():
        return None
    sentences = matrix[1:] if flags & _HAS_SENTENCES else None
    return ArticleEmbedding(tag, matrix[0], sentences)
