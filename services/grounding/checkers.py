"""Checkers that say whether a summary is consistent with its document.

- :class:`AlignmentChecker` (``offline``): the alignment rules alone: the document split as the
  summary service splits it, each summary sentence grounded
  (:func:`services.grounding.align.ground`); the summary is flagged when any sentence is.
- The same with the learned head (``learned``; :mod:`services.grounding.learned`): what the
  bot does before a user sees a model-written summary in a language the head was trained on.
- :class:`LLMJudge` (``llm``): each summary sentence with its best-aligned source sentences,
  asked of the language model "is the sentence supported?", answered yes or no (greedy, two
  tokens at most; anything but a leading "yes" counts as no).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from services.core.types import Prompt
from services.grounding.align import ground
from services.grounding.learned import ConsistencyHead
from services.text.sentences import split_source
from services.text.splitting import clean_text, split_sentences

JUDGE_SYSTEM = "You check summaries against their source. Answer with one word: yes or no."
JUDGE_QUESTION = (
    "Source passages:\n{passages}\n\nSentence: {sentence}\n\n"
    "Is every fact in the sentence (names, numbers, dates, negations, who did what) stated "
    "in the source passages? Answer yes or no."
)
JUDGE_PASSAGES = 3
"""Source sentences shown to the judge per summary sentence (the best aligned)."""


def source_and_summary(
    document: str, summary: str, language: str = ""
) -> tuple[str, list[str], list[str]]:
    """(language, source sentences, summary sentences), the document split as the summary
    service splits what it summarizes (cleaned, sentences with at least one word)."""
    lang, source = split_source(clean_text(document), language)
    return lang, source, split_sentences(summary, lang)


class ConsistencyChecker(Protocol):
    """Says whether ``summary`` is consistent with ``document``."""

    name: str

    def consistent(self, document: str, summary: str, language: str = "") -> bool:
        """True when nothing in ``summary`` is flagged against ``document``."""
        ...


@dataclass
class AlignmentChecker:
    """The bot's own grounding check (``offline``)."""

    embed: Callable[[str], Callable[[list[str]], np.ndarray]] | None = None
    """The encoder for a language (as the summary service has it), or None for lexical only."""
    head: ConsistencyHead | None = None
    """The learned check, or None for the rules alone."""
    name: str = "offline"

    def consistent(self, document: str, summary: str, language: str = "") -> bool:
        """No summary sentence has a detail or content the document lacks (and the head, when
        given, does not doubt the summary)."""
        lang, source, written = source_and_summary(document, summary, language)
        embed = self.embed(lang) if self.embed is not None else None
        return all(g.supported for g in ground(written, source, lang, embed, head=self.head))


@dataclass
class LLMJudge:
    """A language model asked, sentence by sentence, whether the source supports it (``llm``).

    Args:
        engine: an ``Engine`` (a model server's, or the in-process one): ``stream(prompt,
            max_new_tokens, temperature, cancel)``.
    """

    engine: Any
    name: str = "llm"

    def supported(self, sentence: str, passages: list[str]) -> bool:
        """The model's yes or no for one sentence."""
        prompt = Prompt(
            JUDGE_QUESTION.format(
                passages="\n".join(f"- {p}" for p in passages), sentence=sentence
            ),
            instruct=True,
            system=JUDGE_SYSTEM,
        )
        answer = "".join(self.engine.stream(prompt, 2, 0.0, threading.Event()))
        return answer.strip().lower().startswith("yes")

    def consistent(self, document: str, summary: str, language: str = "") -> bool:
        """Every summary sentence judged supported by its best-aligned source sentences."""
        lang, source, written = source_and_summary(document, summary, language)
        aligned = ground(written, source, lang, max_sources=JUDGE_PASSAGES, min_alignment=0.0)
        for item in aligned:
            passages = [source[i] for i in item.sources]
            if not self.supported(item.text, passages):
                return False
        return True
