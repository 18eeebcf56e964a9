"""Keyphrase extraction, KeyBERT's recipe: candidates ranked by embedding relevance, then MMR."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from services.core.errors import EmptyInput, InputTooLarge
from services.core.executor import ModelExecutor
from services.core.protocols import EmbeddingBackend
from services.core.types import Keyphrase, KeywordResult
from services.embeddings.cache import EmbeddingCache, embedding_cache
from services.keywords.candidates import candidate_counts, top_candidates
from services.keywords.diversify import max_sum, mmr
from services.text.language import detect_language
from services.text.lexicon import keyword_stop_words
from services.text.splitting import clean_text, tokenize_words

MIN_WORDS = 5
DEFAULT_MODELS: Mapping[str, str] = {"en": "minilm", "es": "e5", "*": "e5"}
"""Embedding model per language, chosen by F1@10 on the development sets (README)."""


class KeyBERTExtractor:
    """KeyBERT over content-word-run candidates, the language's stop words, and MMR or Max Sum.

    Args:
        executor: the bounded executor model calls go through.
        max_chars: longer texts are refused with :class:`InputTooLarge`.
        diversity: MMR diversity (0 = pure relevance, 1 = pure diversity).
        models: embedding backend per language ("minilm" or "e5"; "*" for the others).
        max_candidates: candidates embedded per text, the most frequent first.
        diversification: "mmr" (default) or "maxsum" (KeyBERT's Max Sum Distance).
        cache: the embedding cache (default: the process's, shared with summaries).
    """

    def __init__(
        self,
        executor: ModelExecutor,
        max_chars: int = 100_000,
        diversity: float = 0.2,
        models: Mapping[str, str] | None = None,
        max_candidates: int = 30,
        diversification: str = "mmr",
        cache: EmbeddingCache | None = None,
    ):
        if diversification not in ("mmr", "maxsum"):
            raise ValueError(f"diversification must be 'mmr' or 'maxsum', not {diversification!r}")
        self._executor = executor
        self._max_chars = max_chars
        self._diversity = diversity
        self._models = dict(models or DEFAULT_MODELS)
        self._max_candidates = max_candidates
        self._diversification = diversification
        self.cache = cache if cache is not None else embedding_cache()

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
        return self.cache.embed_phrases(self.backend(language), phrases)

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
        # The document in one pass, as KeyBERT does (an encoder reads its first 256 tokens).
        # The words-weighted mean of its sentences' embeddings would cover a long text whole
        # and reuse a summary's, but scored 1.4 F1@10 lower on Inspec's longest abstracts.
        document_vector = self.cache.embed(backend, [text])
        candidate_vectors = self.cache.embed_phrases(backend, candidates)
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
