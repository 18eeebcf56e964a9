"""``/ask`` over a chat's history: find the messages about a question, answer from them.

Retrieval is two-stage. TF-IDF over stemmed content words (stop words dropped) finds the
messages that share a word with the question, at most :data:`CANDIDATES` of them; the sentence
encoder then re-ranks those by meaning. Requiring a shared word keeps "nothing about that"
honest: an encoder alone always finds a nearest message, however unrelated. The answer is
the best messages themselves, or, with a writer (an LLM behind a model server), sentences
written from them and grounded: each links to the messages that support it, and one they do
not support is flagged or dropped as the grounding setting says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from services.core.errors import ModelUnavailable
from services.core.executor import ModelExecutor
from services.core.protocols import EmbeddingBackend
from services.core.types import ChatMessage, DigestSentence, HistoryAnswer
from services.grounding.align import GroundingMode, ground
from services.text.language import detect_language
from services.text.lexicon import normalize_terms
from services.text.splitting import clean_text, tokenize_words

logger = logging.getLogger(__name__)

CANDIDATES = 50
"""Messages sharing a word with the question that the encoder re-ranks."""
SHOWN = 3
"""Messages quoted as the answer (fewer when the rest score under half the best)."""
WRITER_CONTEXT = 8
"""Messages a writer reads."""


class Answerer(Protocol):
    """A model that answers a question from given messages (the LLM answerer)."""

    def answer(self, question: str, sentences: Sequence[str], language: str) -> list[str]:
        """Answer sentences (blocking); raises ``ModelUnavailable``."""
        ...


class HistorySearchService:
    """The :class:`services.core.protocols.HistorySearch` over embeddings and TF-IDF.

    Args:
        executor: the bounded executor the work runs in.
        backends: the embedding backend for a language.
        answerer: writes the answer instead of quoting messages (None: quote).
        grounding: what happens to a written sentence the messages do not support.
        answerer_name: the model named under a written answer.
    """

    def __init__(
        self,
        executor: ModelExecutor,
        backends: Callable[[str], EmbeddingBackend],
        answerer: Answerer | None = None,
        grounding: GroundingMode = GroundingMode.MARK,
        answerer_name: str = "llm",
    ) -> None:
        self._executor = executor
        self._backends = backends
        self._answerer = answerer
        self._grounding = grounding
        self._answerer_name = answerer_name

    async def ask(
        self, question: str, messages: list[ChatMessage], language: str = ""
    ) -> HistoryAnswer:
        """The messages relevant to ``question`` and an answer resting on them."""
        return await self._executor.run(self.ask_sync, question, messages, language)

    def ask_sync(
        self, question: str, messages: list[ChatMessage], language: str = ""
    ) -> HistoryAnswer:
        """:meth:`ask` on the calling thread."""
        texts = [clean_text(m.text) for m in messages]
        if not question.strip() or not any(t.strip() for t in texts):
            return HistoryAnswer([], [])
        lang = language or detect_language(question + "\n" + "\n".join(texts[-200:]))
        found = self.retrieve(question, messages, texts, lang)
        if not found:
            return HistoryAnswer([], [])
        if self._answerer is not None:
            try:
                return self._written(question, found, lang)
            except ModelUnavailable as error:
                logger.warning("/ask answer quoted instead of written: %s", error)
        shown = sorted(found[:SHOWN], key=lambda m: (m.date, m.message_id))
        return HistoryAnswer(found, [DigestSentence(m.text, [m]) for m in shown])

    def retrieve(
        self, question: str, messages: Sequence[ChatMessage], texts: Sequence[str], language: str
    ) -> list[ChatMessage]:
        """The messages about ``question``, most relevant first ([] when none shares a word)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        asked = normalize_terms(tokenize_words(question), language)
        if not asked:
            return []
        terms = [normalize_terms(tokenize_words(text), language) for text in texts]
        vectorizer = TfidfVectorizer(analyzer=lambda words: words, sublinear_tf=True)
        try:
            matrix = vectorizer.fit_transform([*terms, asked])
        except ValueError:  # no terms at all
            return []
        lexical = np.asarray((matrix[:-1] @ matrix[-1].T).todense()).ravel()
        order = [int(i) for i in np.argsort(-lexical, kind="stable") if lexical[i] > 0]
        candidates = order[:CANDIDATES]
        if not candidates:
            return []
        lexical_part = lexical[candidates] / lexical[candidates[0]]
        try:
            backend = self._backends(language)
            vectors = np.asarray(backend.embed([question, *(texts[i] for i in candidates)]))
            meaning = np.clip(vectors[1:] @ vectors[0], 0.0, None)
            meaning = meaning / (meaning.max() or 1.0)
            score = 0.5 * lexical_part + 0.5 * meaning
        except ModelUnavailable as error:
            logger.warning("/ask ranked by words only: %s", error)
            score = lexical_part
        ranked = sorted(range(len(candidates)), key=lambda k: (-score[k], k))
        best = score[ranked[0]]
        kept = [candidates[k] for k in ranked if score[k] >= 0.5 * best]
        return [messages[i] for i in kept]

    def _written(self, question: str, found: list[ChatMessage], language: str) -> HistoryAnswer:
        assert self._answerer is not None
        context = sorted(found[:WRITER_CONTEXT], key=lambda m: (m.date, m.message_id))
        lines = [f"{m.author}: {clean_text(m.text)}" if m.author else m.text for m in context]
        written = self._answerer.answer(question, lines, language)
        embed = None
        try:
            embed = self._backends(language).embed
        except ModelUnavailable as error:
            logger.warning("grounding the answer without embeddings: %s", error)
        sentences: list[DigestSentence] = []
        for item in ground(written, lines, language, embed):
            if not item.supported and self._grounding == GroundingMode.DROP:
                continue
            sources = [context[i] for i in sorted(item.sources)]
            flagged = not item.supported and self._grounding != GroundingMode.OFF
            sentences.append(DigestSentence(item.text, sources, flagged))
        return HistoryAnswer(found, sentences, self._answerer_name)
