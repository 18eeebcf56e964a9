"""Keyphrase extraction, KeyBERT's recipe: candidates ranked by embedding relevance, then MMR."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from services.core.errors import EmptyInput, InputTooLarge
from services.core.executor import ModelExecutor
from services.core.protocols import EmbeddingBackend
from services.core.types import Keyphrase, KeywordResult
from services.keywords.candidates import candidate_counts, top_candidates
from services.keywords.diversify import max_sum, mmr
from services.text.language import detect_language
from services.text.lexicon import keyword_stop_words
from services.text.splitting import clean_text, tokenize_words

MIN_WORDS = 5
DEFAULT_MODELS: Mapping[str, str] = {"en": "minilm", "es": "e5", "*": "e5"}
"""Embedding model per language, chosen by F1@10 on the development sets (README)."""


class PhraseEmbeddingCache:
    """A bounded LRU cache of phrase embeddings per backend: chat digests and related
    documents repeat their phrases, and each embedding costs a model call."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, backend: EmbeddingBackend, phrases: list[str]) -> np.ndarray:
        """Embeddings of ``phrases`` (rows in order), computing only the missing ones."""
        with self._lock:
            missing = [p for p in dict.fromkeys(phrases) if (backend.name, p) not in self._vectors]
        if missing:
            fresh = np.asarray(backend.embed_phrases(missing), dtype=np.float32)
            with self._lock:
                for phrase, vector in zip(missing, fresh, strict=True):
                    self._vectors[(backend.name, phrase)] = vector
                while len(self._vectors) > self._capacity:
                    self._vectors.popitem(last=False)
        with self._lock:
            rows = []
            for phrase in phrases:
                key = (backend.name, phrase)
                self._vectors.move_to_end(key)
                rows.append(self._vectors[key])
        return np.vstack(rows)


class KeyBERTExtractor:
    """KeyBERT over content-word-run candidates, the language's stop words, and MMR or Max Sum.

    Args:
        executor: the bounded executor model calls go through.
        max_chars: longer texts are refused with :class:`InputTooLarge`.
        diversity: MMR diversity (0 = pure relevance, 1 = pure diversity).
        models: embedding backend per language ("minilm" or "e5"; "*" for the others).
        max_candidates: candidates embedded per text, the most frequent first.
        diversification: "mmr" (default) or "maxsum" (KeyBERT's Max Sum Distance).
    """

    def __init__(
        self,
        executor: ModelExecutor,
        max_chars: int = 100_000,
        diversity: float = 0.2,
        models: Mapping[str, str] | None = None,
        max_candidates: int = 30,
        diversification: str = "mmr",
    ):
        if diversification not in ("mmr", "maxsum"):
            raise ValueError(f"diversification must be 'mmr' or 'maxsum', not {diversification!r}")
        self._executor = executor
        self._max_chars = max_chars
        self._diversity = diversity
        self._models = dict(models or DEFAULT_MODELS)
        self._max_candidates = max_candidates
        self._diversification = diversification
        self.cache = PhraseEmbeddingCache()

    def model_name(self, language: str) -> str:
        """The embedding backend used for ``language``."""
        return self._models.get(language) or self._models.get("*", "minilm")

    def backend(self, language: str) -> EmbeddingBackend:
        """The loaded embedding backend for ``language`` (blocking on first use)."""
        from services.embeddings.backends import keyword_backend

        return keyword_backend(self.model_name(language))

    def warm_up(self) -> None:
        """Load the models now (blocking) so the first request does not pay for it."""
        for language in ("en", "es"):
            self.backend(language)

    def embed_phrases(self, phrases: list[str], language: str) -> np.ndarray:
        """Cached unit-length embeddings of ``phrases`` with ``language``'s model (blocking)."""
        return self.cache.embed(self.backend(language), phrases)

    async def extract(self, text: str, top_n: int = 10, language: str = "") -> KeywordResult:
        """Return up to ``top_n`` keyphrases of ``text``, best first."""
        if len(text) > self._max_chars:
            raise InputTooLarge(len(text), self._max_chars)
        cleaned = clean_text(text)
        if len(tokenize_words(cleaned)) < MIN_WORDS:
            raise EmptyInput("too few words")
        lang = language or detect_language(cleaned)
        return await self._executor.run(self.extract_sync, cleaned, top_n, lang)

    def extract_sync(self, text: str, top_n: int, language: str) -> KeywordResult:
        """:meth:`extract` without the checks, on the calling thread (benchmarks, executor)."""
        counts = candidate_counts(text, keyword_stop_words(language))
        candidates = top_candidates(counts, self._max_candidates)
        if not candidates:
            return KeywordResult(language=language)
        backend = self.backend(language)
        # KeyBERT's recipe without its CountVectorizer, which would re-tokenize the candidates
        # and only ever match single words.
        document_vector = backend.embed([text])
        candidate_vectors = self.cache.embed(backend, candidates)
        count = min(top_n, len(candidates))
        if self._diversification == "maxsum":
            pairs = max_sum(
                document_vector, candidate_vectors, candidates, count, min(2 * count, 20)
            )
        else:
            pairs = mmr(document_vector, candidate_vectors, candidates, count, self._diversity)
        # MMR / Max Sum choose the set; within it, the most relevant phrase comes first.
        ranked = sorted(pairs, key=lambda pair: -pair[1])
        return KeywordResult(
            language=language,
            keyphrases=[Keyphrase(phrase, float(score)) for phrase, score in ranked],
        )
