"""Keyphrase extraction with KeyBERT over sentence embeddings."""

from __future__ import annotations

import functools
import threading
from typing import Any

from services.errors import EmptyInput, InputTooLarge
from services.executor import ModelExecutor
from services.language import detect_language
from services.lexicon import keyword_stop_words
from services.protocols import Keyphrase, KeywordResult
from services.text import clean_text, tokenize_words

MIN_WORDS = 5


class KeyBERTExtractor:
    """KeyBERT with 1–3-gram candidates, the language's stop words and MMR diversity.

    Args:
        executor: the bounded executor model calls go through.
        max_chars: longer texts are refused with :class:`InputTooLarge`.
        diversity: MMR diversity (0 = pure relevance, 1 = pure diversity).
    """

    def __init__(self, executor: ModelExecutor, max_chars: int = 100_000, diversity: float = 0.5):
        self._executor = executor
        self._max_chars = max_chars
        self._diversity = diversity
        self._lock = threading.Lock()

    @functools.cached_property
    def _model(self) -> Any:
        from keybert import KeyBERT

        from services.embeddings import load_sentence_model

        return KeyBERT(model=load_sentence_model())

    def warm_up(self) -> None:
        """Load the model now (blocking) so the first request does not pay for it."""
        with self._lock:
            _ = self._model

    async def extract(self, text: str, top_n: int = 10, language: str = "") -> KeywordResult:
        """Return up to ``top_n`` keyphrases of ``text``, best first."""
        if len(text) > self._max_chars:
            raise InputTooLarge(len(text), self._max_chars)
        cleaned = clean_text(text)
        if len(tokenize_words(cleaned)) < MIN_WORDS:
            raise EmptyInput("too few words")
        lang = language or detect_language(cleaned)
        return await self._executor.run(self._extract_sync, cleaned, top_n, lang)

    def _extract_sync(self, text: str, top_n: int, language: str) -> KeywordResult:
        from sklearn.feature_extraction.text import CountVectorizer

        with self._lock:
            model = self._model
        vectorizer = CountVectorizer(
            ngram_range=(1, 3),
            stop_words=sorted(keyword_stop_words(language)) or None,
            token_pattern=r"(?u)\b[^\W\d_][\w'-]*\b",  # noqa: S106 - a regex, not a password
            lowercase=True,
        )
        try:
            pairs = model.extract_keywords(
                text,
                vectorizer=vectorizer,
                top_n=top_n,
                use_mmr=True,
                diversity=self._diversity,
            )
        except ValueError:  # the vectorizer found no candidate (only stop words)
            pairs = []
        return KeywordResult(
            language=language,
            keyphrases=[Keyphrase(phrase, float(score)) for phrase, score in pairs],
        )
