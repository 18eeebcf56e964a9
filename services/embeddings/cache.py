"""One bounded cache of embeddings per process, shared by summaries, key phrases and digests.

``/keywords`` after ``/summary`` of the same text, a second summary method, grounding a written
summary against its source, and chat digests that repeat their phrases all embed text that
was embedded moments before; each embedding costs a model call. Entries are keyed by the
backend, the kind of text (passage or phrase: e5 embeds them differently) and a SHA-256 digest
of the text, so the cache holds vectors, never the text itself. Least recently used entries
go first once ``capacity`` is reached (10,000 MiniLM or e5 vectors: ~15 MB).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from services.core.protocols import EmbeddingBackend

CAPACITY = 10_000
Key = tuple[str, str, bytes]


class EmbeddingCache:
    """A bounded LRU cache of unit-length embeddings (see the module's docstring)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._vectors: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        """Forget every vector (benchmarks timing a text the process has not seen)."""
        with self._lock:
            self._vectors.clear()

    def embed(self, backend: EmbeddingBackend, texts: list[str]) -> np.ndarray:
        """Passage embeddings of ``texts`` (rows in order), computing only the missing ones."""
        return self._embed(backend, "passage", backend.embed, texts)

    def embed_phrases(self, backend: EmbeddingBackend, phrases: list[str]) -> np.ndarray:
        """Phrase (query) embeddings of ``phrases``, computing only the missing ones."""
        return self._embed(backend, "phrase", backend.embed_phrases, phrases)

    def _embed(
        self,
        backend: EmbeddingBackend,
        kind: str,
        compute: Callable[[list[str]], object],
        texts: list[str],
    ) -> np.ndarray:
        keys = [(backend.name, kind, hashlib.sha256(t.encode()).digest()) for t in texts]
        known: dict[Key, np.ndarray] = {}
        missing: dict[Key, str] = {}
        with self._lock:
            for key, text in zip(keys, texts, strict=True):
                if key in self._vectors:
                    self._vectors.move_to_end(key)
                    known[key] = self._vectors[key]
                else:
                    missing[key] = text
        if missing:
            fresh = np.asarray(compute(list(missing.values())), dtype=np.float32)
            known.update(zip(missing, fresh, strict=True))
            with self._lock:
                self._vectors.update((key, known[key]) for key in missing)
                while len(self._vectors) > self._capacity:
                    self._vectors.popitem(last=False)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([known[key] for key in keys])


_shared = EmbeddingCache()


def embedding_cache() -> EmbeddingCache:
    """The process's shared cache."""
    return _shared
