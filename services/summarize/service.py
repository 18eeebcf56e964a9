"""The summarization service: length control, method choice and fallbacks, off the event loop."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from services.core.errors import (
    InputTooLarge,
    InputTooShort,
    ModelUnavailable,
    UnknownMethod,
)
from services.core.executor import ModelExecutor
from services.core.types import Length, Summary, SummaryOptions
from services.grounding.align import GroundingMode, ground
from services.grounding.learned import ConsistencyHead
from services.summarize.budget import pick_within_budget, word_budget
from services.summarize.learned.features import is_conversation
from services.summarize.prepared import PreparedText, SentenceRanker, prepare_text
from services.summarize.rankers.lexrank import LexRankRanker

logger = logging.getLogger(__name__)
MIN_SENTENCES = 3
"""Texts with fewer sentences are already short enough."""


# (ratio of the source, lower bound, upper bound) in sentences.
LENGTH_RULES: dict[Length, tuple[float, int, int]] = {
    Length.SHORT: (0.05, 2, 4),
    Length.MEDIUM: (0.10, 3, 7),
    Length.LONG: (0.20, 5, 14),
}


def sentence_count(total: int, length: Length, override: int | None = None) -> int:
    """How many sentences a summary of a ``total``-sentence text keeps.

    Short / medium / long keep 5 / 10 / 20 % of the sentences, within 2–4 / 3–7 / 5–14, and
    never all of them; an explicit ``override`` wins (capped to the text).
    """
    if override is not None:
        return max(1, min(override, total))
    ratio, low, high = LENGTH_RULES[length]
    wanted = min(max(round(total * ratio), low), high)
    return max(1, min(wanted, total - 1))


_WARM_UP_TEXTS = (
    "Condensa reads long text. It picks the central sentences. The result is short. Done.",
    "Condensa lee textos largos. Elige las frases centrales. El resultado es breve. Listo.",
)


class GenerativeSummarizer(Protocol):
    """An abstractive backend: writes new sentences instead of picking existing ones."""

    def summarize(self, sentences: Sequence[str], language: str, length: Length) -> list[str]:
        """Summary sentences of ``sentences`` (blocking); raises ``ModelUnavailable``."""
        ...


ADAPTED_PREFIX = "llm:"


class AdaptedSource(Protocol):
    """Models adapted with ``condensa adapt`` (``services.llm.adapt.serving``)."""

    def names(self) -> list[str]:
        """Names of the adapted models available now."""
        ...

    def summarizer(self, name: str) -> GenerativeSummarizer:
        """The backend of model ``name``; raises ``ModelUnavailable`` when missing or broken."""
        ...


LEARNED_PREFIX = "extractive:"


class LearnedSource(Protocol):
    """Heads trained with ``condensa adapt --kind extractive`` (``summarize.learned``)."""

    def names(self) -> list[str]:
        """Names of the trained heads available now."""
        ...

    def ranker(self, name: str) -> SentenceRanker:
        """The ranker of head ``name``; raises ``ModelUnavailable`` when missing or broken."""
        ...


class SummaryService:
    """Summarizes text with a named method, off the event loop.

    Args:
        executor: the bounded executor every model call goes through.
        rankers: extractive method name → ranker.
        max_chars: texts longer than this are refused with :class:`InputTooLarge`.
        default_method: used when a request names none; also the fallback of abstractive
            methods whose model is unavailable.
        generators: abstractive method name → backend.
    """

    def __init__(
        self,
        executor: ModelExecutor,
        rankers: dict[str, SentenceRanker],
        max_chars: int = 100_000,
        default_method: str = "",
        generators: dict[str, GenerativeSummarizer] | None = None,
        adapted: AdaptedSource | None = None,
        learned: LearnedSource | None = None,
        grounding: GroundingMode = GroundingMode.MARK,
        embedder: Callable[[str], Callable[[list[str]], Any]] | None = None,
        consistency_head: ConsistencyHead | None = None,
    ) -> None:
        if not rankers:
            raise ValueError("at least one extractive ranker is required")
        self._executor = executor
        self._rankers = rankers
        self._generators = generators or {}
        self._adapted = adapted
        self._learned = learned
        self._grounding = grounding
        self._embedder = embedder
        self._head = consistency_head
        self._max_chars = max_chars
        self._fallback = default_method if default_method in rankers else next(iter(rankers))
        known = {**rankers, **self._generators}
        self._default = default_method if default_method in known else self._fallback
        # When a method's model is missing: the default, then the pretrained-only embedding
        # ranker, then LexRank (no model at all); each only if it is another method.
        self._fallbacks = [m for m in (self._fallback, "embedding", "lexrank") if m in rankers]

    def warm_up(self) -> None:
        """Load the sentence splitters, language model, stemmers and stop words (blocking)."""
        for sample in _WARM_UP_TEXTS:
            self._summarize_sync(sample, SummaryOptions(), self._fallback)

    def methods(self) -> list[str]:
        """Method names, default first."""
        names = [*self._rankers, *self._generators]
        if self._adapted is not None:
            names += [f"{ADAPTED_PREFIX}{name}" for name in self._adapted.names()]
        if self._learned is not None:
            names += [f"{LEARNED_PREFIX}{name}" for name in self._learned.names()]
        return [self._default, *(m for m in names if m != self._default)]

    async def summarize(self, text: str, options: SummaryOptions) -> Summary:
        """Summarize ``text`` as ``options`` ask; see ``Summarizer``."""
        if len(text) > self._max_chars:
            raise InputTooLarge(len(text), self._max_chars)
        method = options.method or self._default
        adapted = method.startswith(ADAPTED_PREFIX) and self._adapted is not None
        learned = method.startswith(LEARNED_PREFIX) and self._learned is not None
        known = method in self._rankers or method in self._generators
        if not (known or adapted or learned):
            raise UnknownMethod(method, self.methods())
        return await self._executor.run(self._summarize_sync, text, options, method)

    def _summarize_sync(self, text: str, options: SummaryOptions, method: str) -> Summary:
        prepared = prepare_text(text, options.language)
        total = len(prepared.sentences)
        if total < MIN_SENTENCES:
            raise InputTooShort(total, MIN_SENTENCES)
        count = sentence_count(total, options.length, options.sentences)
        note = requested = ""
        generator = self._generators.get(method)
        if generator is not None or method.startswith(ADAPTED_PREFIX):
            try:
                if generator is None:
                    assert self._adapted is not None  # checked in summarize()
                    generator = self._adapted.summarizer(method.removeprefix(ADAPTED_PREFIX))
                written = generator.summarize(
                    prepared.sentences, prepared.language, options.length
                )
                return self._grounded(method, prepared, written)
            except ModelUnavailable as error:
                logger.warning(
                    "%s unavailable, falling back to %s: %s", method, self._fallback, error
                )
                note, requested, method = error.reason, method, self._fallback
        by_words = options.sentences is None and is_conversation(prepared.sentences)
        alternatives = [m for m in self._fallbacks if m != method]
        while True:
            try:
                ranker = self._ranker(method)
                chosen = self._pick(ranker, prepared, count, options.length, by_words)
                break
            except ModelUnavailable as error:
                if not alternatives:
                    raise
                fallback = alternatives.pop(0)
                logger.warning("%s unavailable, falling back to %s: %s", method, fallback, error)
                note = note or error.reason
                requested = requested or method
                method = fallback
        logger.debug(
            "method=%s language=%s picked %d of %d", method, prepared.language, len(chosen), total
        )
        return Summary(
            method=method,
            language=prepared.language,
            sentences=[prepared.sentences[i] for i in chosen],
            source_sentences=total,
            source_chars=prepared.chars,
            note=note,
            requested_method=requested,
        )

    @staticmethod
    def _pick(
        ranker: SentenceRanker, prepared: PreparedText, count: int, length: Length, by_words: bool
    ) -> list[int]:
        """``count`` sentences; for a conversation, as many as its word budget holds."""
        if not by_words:
            return ranker.select(prepared, count)
        total = len(prepared.sentences)
        budget = word_budget(sum(len(w) for w in prepared.words), length)
        scores = getattr(ranker, "scores", None)
        if callable(scores):
            return pick_within_budget(scores(prepared), prepared.words, budget)
        # Rankers that only pick a number of sentences: the number the budget holds at the
        # median sentence length, fewer while the pick runs well over it.
        typical = float(np.median([len(w) for w in prepared.words])) or 1.0
        count = max(1, min(total - 1, round(budget / typical)))
        chosen = ranker.select(prepared, count)
        for _ in range(2):
            if count == 1 or sum(len(prepared.words[i]) for i in chosen) <= 1.3 * budget:
                break
            count -= 1
            chosen = ranker.select(prepared, count)
        return chosen

    def _grounded(self, method: str, prepared: PreparedText, written: list[str]) -> Summary:
        """A written summary with its sources cited and unsupported sentences marked or
        dropped, as ``GROUNDING`` says."""
        total, language = len(prepared.sentences), prepared.language
        if self._grounding == GroundingMode.OFF:
            return Summary(method, language, written, total, prepared.chars)
        embed = None
        if self._embedder is not None:
            try:
                embed = self._embedder(language)
            except ModelUnavailable as error:
                logger.warning("grounding without embeddings: %s", error)
        grounded = ground(written, prepared.sentences, language, embed, head=self._head)
        kept = [g for g in grounded if g.supported or self._grounding != GroundingMode.DROP]
        quote_of: dict[int, int] = {}
        for g in kept:
            for index in g.sources:
                quote_of.setdefault(index, len(quote_of))
        return Summary(
            method,
            language,
            [g.text for g in kept],
            total,
            prepared.chars,
            citations=[[quote_of[i] for i in g.sources] for g in kept],
            quotes=[prepared.sentences[i] for i in quote_of],
            flagged=[not g.supported for g in kept],
            dropped=len(grounded) - len(kept),
        )

    def _ranker(self, method: str) -> SentenceRanker:
        if method in self._rankers or self._learned is None:
            return self._rankers[method]
        return self._learned.ranker(method.removeprefix(LEARNED_PREFIX))


def build_summary_service(
    executor: ModelExecutor,
    max_chars: int,
    default_method: str = "extractive:auto",
    abstractive: GenerativeSummarizer | None = None,
    llm: GenerativeSummarizer | None = None,
    adapted: AdaptedSource | None = None,
    learned: LearnedSource | None = None,
    grounding: GroundingMode = GroundingMode.MARK,
) -> SummaryService:
    """The service with every backend this installation has.

    Extractive methods always work offline; ``abstractive`` (a seq2seq backend) is listed when
    given and falls back to ``default_method``'s extractive summary when its model is missing.
    """
    from services.grounding.learned import shipped_head
    from services.summarize.learned.ranker import AUTO, LearnedRanker, ShippedHeads
    from services.summarize.rankers.embedding import EmbeddingRanker
    from services.summarize.rankers.lead import LeadRanker
    from services.summarize.rankers.sumy_family import sumy_rankers
    from services.summarize.rankers.textteaser import TextTeaserRanker

    rankers: dict[str, SentenceRanker] = {"lexrank": LexRankRanker()}
    rankers.update(sumy_rankers())
    rankers["textteaser"] = TextTeaserRanker()
    rankers["embedding"] = EmbeddingRanker()
    rankers["lead"] = LeadRanker()
    rankers[f"{LEARNED_PREFIX}{AUTO}"] = LearnedRanker(ShippedHeads())
    generators: dict[str, GenerativeSummarizer] = {}
    if abstractive is not None:
        generators["abstractive"] = abstractive
    if llm is not None:
        generators["llm"] = llm
    return SummaryService(
        executor,
        rankers,
        max_chars=max_chars,
        default_method=default_method,
        generators=generators,
        adapted=adapted,
        learned=learned,
        grounding=grounding,
        embedder=_encoder_for_language,
        consistency_head=shipped_head() if grounding != GroundingMode.OFF else None,
    )


def _encoder_for_language(language: str) -> Callable[[list[str]], Any]:
    """The shipped sentence encoder for ``language`` (MiniLM for English, e5 otherwise),
    through the process's embedding cache (the source's sentences were often just embedded
    by an extractive summary of the same text)."""
    from services.embeddings.backends import keyword_backend
    from services.embeddings.cache import embedding_cache

    backend = keyword_backend("minilm" if language == "en" else "e5")
    return functools.partial(embedding_cache().embed, backend)
