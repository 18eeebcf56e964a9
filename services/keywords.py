"""Keyphrase extraction with KeyBERT over sentence embeddings."""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

from services.errors import EmptyInput, InputTooLarge
from services.executor import ModelExecutor
from services.language import detect_language
from services.lexicon import keyword_stop_words
from services.protocols import Keyphrase, KeywordResult
from services.text import clean_text, tokenize_words

MIN_WORDS = 5


_TOKEN_RE = re.compile(r"[^\W\d_][\w'’-]*|\d[\w.,]*|[^\w\s]")
MAX_PHRASE_WORDS = 4


def candidate_phrases(text: str, stop_words: frozenset[str]) -> list[str]:
    """Keyphrase candidates: runs of content words between stop words and punctuation.

    Plain 1–3-gram candidates (stock KeyBERT) favour long, redundant phrases that straddle stop
    words ("services hyped ad"); keyphrases are noun-phrase-like runs of content words. A run of
    up to four words is a candidate as a whole; a longer run gives its word trigrams. Every
    content word longer than two letters is a candidate too. First occurrence order, no repeats.
    """
    seen: dict[str, None] = {}
    run: list[str] = []

    def flush() -> None:
        if not run:
            return
        if len(run) <= MAX_PHRASE_WORDS:
            phrases = [" ".join(run)]
        else:
            phrases = [" ".join(run[i : i + 3]) for i in range(len(run) - 2)]
        phrases.extend(word for word in run if len(word) > 2)
        for phrase in phrases:
            seen.setdefault(phrase.lower(), None)
        run.clear()

    for token in _TOKEN_RE.findall(text):
        lower = token.lower()
        if not token[0].isalpha() or lower in stop_words or len(lower) < 2:
            flush()
        else:
            run.append(token)
    flush()
    return list(seen)


class KeyBERTExtractor:
    """KeyBERT over content-word-run candidates, the language's stop words, and MMR.

    Args:
        executor: the bounded executor model calls go through.
        max_chars: longer texts are refused with :class:`InputTooLarge`.
        diversity: MMR diversity (0 = pure relevance, 1 = pure diversity).
    """

    def __init__(self, executor: ModelExecutor, max_chars: int = 100_000, diversity: float = 0.2):
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
        with self._lock:
            model = self._model
        from keybert._mmr import mmr

        candidates = candidate_phrases(text, keyword_stop_words(language))
        if not candidates:
            return KeywordResult(language=language)
        # KeyBERT's own backend and MMR; its CountVectorizer is bypassed because it would
        # re-tokenize the candidates and only ever match single words.
        document_vector = model.model.embed([text])
        candidate_vectors = model.model.embed(candidates)
        pairs = mmr(
            document_vector,
            candidate_vectors,
            candidates,
            min(top_n, len(candidates)),
            self._diversity,
        )
        return KeywordResult(
            language=language,
            keyphrases=[Keyphrase(phrase, float(score)) for phrase, score in pairs],
        )
