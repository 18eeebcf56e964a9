"""The learned extractive ranker: frozen encoder, features, trained head, trigram blocking.

``extractive:auto`` uses the heads shipped in ``heads/`` (English news, other-language news,
English conversations, other-language conversations), chosen by the text's language and
whether it reads as a conversation; ``extractive:<name>`` uses a head ``condensa adapt --kind
extractive`` saved under ``DATA_DIR/models/<name>``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from services.core.errors import ModelUnavailable
from services.core.protocols import EmbeddingBackend
from services.summarize.learned.features import head_inputs, is_conversation
from services.summarize.learned.head import SentenceHead
from services.summarize.learned.oracle import ngrams
from services.summarize.prepared import PreparedText

SHIPPED_DIR = Path(__file__).resolve().parent / "heads"
PREFIX = "extractive:"
AUTO = "auto"
NAME_FILE = "head.json"


def trigram_blocked(scores: np.ndarray, words: list[list[str]], count: int) -> list[int]:
    """The ``count`` best sentences by score, skipping one that repeats a word trigram of a
    sentence already chosen (BERTSUM's trigram blocking), in document order. Blocked sentences
    fill in when too few remain."""
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    chosen: list[int] = []
    seen: set[tuple[str, ...]] = set()
    blocked: list[int] = []
    for index in order:
        if len(chosen) == count:
            break
        grams = ngrams([w.lower() for w in words[index]], 3)
        if grams & seen:
            blocked.append(index)
            continue
        chosen.append(index)
        seen |= grams
    chosen += blocked[: count - len(chosen)]
    return sorted(chosen)


def default_backends(name: str) -> EmbeddingBackend:
    """The shipped encoder called ``name``, loaded once per process."""
    from services.embeddings.backends import keyword_backend

    return keyword_backend(name)


class LearnedRanker:
    """A ``SentenceRanker`` over one head, or a chooser of heads by language and genre.

    Args:
        heads: (language, is_conversation) → the head to use.
        backends: encoder name → embedding backend.
    """

    def __init__(
        self,
        heads: Callable[[str, bool], SentenceHead],
        backends: Callable[[str], EmbeddingBackend] = default_backends,
    ) -> None:
        self._heads = heads
        self._backends = backends

    def scores(self, text: PreparedText) -> np.ndarray:
        """The head's score of every sentence (blocking: runs the encoder)."""
        head = self._heads(text.language, is_conversation(text.sentences))
        from services.embeddings.cache import embedding_cache

        vectors = embedding_cache().embed(self._backends(head.encoder), text.sentences)
        return head.scores(head_inputs(text, vectors))

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices of the chosen sentences, in document order."""
        return trigram_blocked(self.scores(text), text.words, count)


class ShippedHeads:
    """The heads in ``heads/``: ``news-en``, ``news-multi``, ``conversation-en``,
    ``conversation-multi`` (files missing or damaged raise ``ModelUnavailable``)."""

    def __init__(self, directory: Path = SHIPPED_DIR) -> None:
        self._dir = directory
        self._loaded: dict[str, SentenceHead] = {}
        self._lock = threading.Lock()

    @staticmethod
    def name_for(language: str, conversation: bool) -> str:
        """Which shipped head reads a text in ``language`` of that genre."""
        genre = "conversation" if conversation else "news"
        return f"{genre}-{'en' if language == 'en' else 'multi'}"

    def __call__(self, language: str, conversation: bool) -> SentenceHead:
        """The head for ``language`` and genre."""
        name = self.name_for(language, conversation)
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = SentenceHead.load(self._dir / f"{name}.json", PREFIX + AUTO)
            return self._loaded[name]


class LearnedModels:
    """Heads trained with ``condensa adapt --kind extractive``, served as ``extractive:<name>``.

    Args:
        models_dir: ``DATA_DIR/models``; a head lives in ``<name>/head.json``.
        backends: encoder name → embedding backend.
    """

    def __init__(
        self, models_dir: Path, backends: Callable[[str], EmbeddingBackend] = default_backends
    ) -> None:
        self._dir = models_dir
        self._backends = backends
        self._rankers: dict[str, LearnedRanker] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Trained heads on disk."""
        if not self._dir.is_dir():
            return []
        return sorted(d.name for d in self._dir.iterdir() if (d / NAME_FILE).is_file())

    def ranker(self, name: str) -> LearnedRanker:
        """The ranker of head ``name``; ``ModelUnavailable`` when missing or damaged."""
        method = PREFIX + name
        with self._lock:
            if name not in self._rankers:
                if name not in self.names():
                    raise ModelUnavailable(method, f"no trained head called {name!r}")
                head = SentenceHead.load(self._dir / name / NAME_FILE, method)
                self._rankers[name] = LearnedRanker(lambda _l, _c: head, self._backends)
            return self._rankers[name]
