"""Digest evaluation: the narrative (TL;DR plus topic sentences, as plain text) against
reference summaries of conversations, beside two baselines scored the same way: Lead-3 (the
first three messages) and Longest-3 (the three longest), each message as "Author: text".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from services.core.errors import CondensaError
from services.core.protocols import DigestMaker
from services.core.types import ChatMessage
from services.evaluation.data import ConversationExample
from services.evaluation.rouge import EvaluationRun, make_scorer, score_pair
from services.text.language import detect_language

SYSTEMS = ("narrative", "lead-3", "longest-3")


def as_chat(example: ConversationExample) -> list[ChatMessage]:
    """The example's messages as stored group messages (a minute apart)."""
    return [
        ChatMessage(0, number, 0, author, 60 * number, text)
        for number, (author, text) in enumerate(example.messages, start=1)
    ]


def _turn(message: ChatMessage) -> str:
    return f"{message.author}: {message.text}" if message.author else message.text


def lead_turns(messages: Sequence[ChatMessage], count: int = 3) -> str:
    """The first ``count`` messages, one per line."""
    return "\n".join(_turn(m) for m in messages[:count])


def longest_turns(messages: Sequence[ChatMessage], count: int = 3) -> str:
    """The ``count`` longest messages (by characters), in conversation order."""
    order = sorted(range(len(messages)), key=lambda i: (-len(messages[i].text), i))[:count]
    return "\n".join(_turn(messages[i]) for i in sorted(order))


async def evaluate_digests(
    maker: DigestMaker, examples: Iterable[ConversationExample]
) -> dict[str, EvaluationRun]:
    """Score the digest narrative and both baselines on every example.

    A conversation the digest refuses (too few messages) counts as an empty narrative and in
    ``refused``.
    """
    runs = {name: EvaluationRun(name) for name in SYSTEMS}
    scorers: dict[str, Any] = {}
    for example in examples:
        messages = as_chat(example)
        language = example.language
        try:
            digest = await maker.digest(messages, language)
            narrative = "\n".join(s.plain() for s in digest.narrative())
            language = language or digest.language
        except CondensaError:
            narrative = ""
            runs["narrative"].refused += 1
        language = language or detect_language(" ".join(m.text for m in messages))
        scorer = scorers.setdefault(language, make_scorer(language))
        predictions = {
            "narrative": narrative,
            "lead-3": lead_turns(messages),
            "longest-3": longest_turns(messages),
        }
        for name, prediction in predictions.items():
            runs[name].scores.append(score_pair(scorer, prediction, example.summary, language))
            runs[name].predictions.append({"id": example.id, "prediction": prediction})
    return runs
