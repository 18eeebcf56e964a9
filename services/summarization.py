"""The summarization service: preprocessing, length control and the extractive backends.

Preprocess (clean, detect the language, split sentences, tokenize) and postprocess (pick the
sentences, keep document order) are pure; only the ranking runs in the model executor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from services.errors import EmptyInput, InputTooLarge, InputTooShort, UnknownMethod
from services.executor import ModelExecutor
from services.language import detect_language
from services.lexicon import normalize_terms
from services.lexrank import lexrank_scores, top_indices
from services.protocols import Length, Summary, SummaryOptions
from services.text import clean_text, split_sentences, tokenize_words

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


@dataclass(frozen=True)
class PreparedText:
    """A text split and tokenized for extractive ranking."""

    language: str
    sentences: list[str]
    words: list[list[str]]
    chars: int

    def terms(self) -> list[list[str]]:
        """Normalized terms per sentence (lowercased, stop words removed, stemmed)."""
        return [normalize_terms(words, self.language) for words in self.words]


def prepare_text(text: str, language: str = "") -> PreparedText:
    """Clean, detect the language (unless given), split into sentences and words."""
    cleaned = clean_text(text)
    if not any(ch.isalnum() for ch in cleaned):
        raise EmptyInput("no text")
    lang = language or detect_language(cleaned)
    sentences = [s for s in split_sentences(cleaned, lang) if tokenize_words(s)]
    return PreparedText(
        language=lang,
        sentences=sentences,
        words=[tokenize_words(s) for s in sentences],
        chars=len(cleaned),
    )


_WARM_UP_TEXTS = (
    "Condensa reads long text. It picks the central sentences. The result is short. Done.",
    "Condensa lee textos largos. Elige las frases centrales. El resultado es breve. Listo.",
)


class SentenceRanker(Protocol):
    """An extractive algorithm: picks ``count`` sentence indices of a prepared text."""

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices of the chosen sentences, in document order."""
        ...


class LexRankRanker:
    """Our vectorized LexRank (see :mod:`services.lexrank`)."""

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Pick the ``count`` most central sentences."""
        return top_indices(lexrank_scores(text.terms()), count)


class SummaryService:
    """Summarizes text with a named extractive method, off the event loop.

    Args:
        executor: the bounded executor every ranking call goes through.
        rankers: method name → ranker; the first is the default.
        max_chars: texts longer than this are refused with :class:`InputTooLarge`.
    """

    def __init__(
        self,
        executor: ModelExecutor,
        rankers: dict[str, SentenceRanker],
        max_chars: int = 100_000,
        default_method: str = "",
    ) -> None:
        if not rankers:
            raise ValueError("at least one ranker is required")
        self._executor = executor
        self._rankers = rankers
        self._max_chars = max_chars
        self._default = default_method if default_method in rankers else next(iter(rankers))

    def warm_up(self) -> None:
        """Load the sentence splitters, language model, stemmers and stop words (blocking)."""
        for sample in _WARM_UP_TEXTS:
            self._summarize_sync(
                sample, SummaryOptions(), self._default, self._rankers[self._default]
            )

    def methods(self) -> list[str]:
        """Method names, default first."""
        return [self._default, *(m for m in self._rankers if m != self._default)]

    async def summarize(self, text: str, options: SummaryOptions) -> Summary:
        """Summarize ``text`` as ``options`` ask; see :class:`services.protocols.Summarizer`."""
        if len(text) > self._max_chars:
            raise InputTooLarge(len(text), self._max_chars)
        method = options.method or self._default
        ranker = self._rankers.get(method)
        if ranker is None:
            raise UnknownMethod(method, self.methods())
        return await self._executor.run(self._summarize_sync, text, options, method, ranker)

    def _summarize_sync(
        self, text: str, options: SummaryOptions, method: str, ranker: SentenceRanker
    ) -> Summary:
        prepared = prepare_text(text, options.language)
        total = len(prepared.sentences)
        if total < MIN_SENTENCES:
            raise InputTooShort(total, MIN_SENTENCES)
        count = sentence_count(total, options.length, options.sentences)
        chosen = ranker.select(prepared, count)
        logger.debug(
            "method=%s language=%s picked %d of %d", method, prepared.language, len(chosen), total
        )
        return Summary(
            method=method,
            language=prepared.language,
            sentences=[prepared.sentences[i] for i in chosen],
            source_sentences=total,
            source_chars=prepared.chars,
        )


def build_summary_service(
    executor: ModelExecutor, max_chars: int, default_method: str = "lexrank"
) -> SummaryService:
    """The service with every extractive backend this installation has."""
    from services.extractive import LeadRanker, TextTeaserRanker, sumy_rankers

    rankers: dict[str, SentenceRanker] = {"lexrank": LexRankRanker()}
    rankers.update(sumy_rankers())
    rankers["textteaser"] = TextTeaserRanker()
    rankers["lead"] = LeadRanker()
    return SummaryService(executor, rankers, max_chars=max_chars, default_method=default_method)
