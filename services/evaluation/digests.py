"""Digest evaluation: the narrative (TL;DR plus topic sentences, as plain text) against
reference summaries of conversations, beside two baselines scored the same way: Lead-3 (the
first three messages) and Longest-3 (the three longest), each message as "Author: text".
And the catch-up: whether a member's catch-up lists every reply to them, and its length.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Protocol

from services.core.errors import CondensaError
from services.core.protocols import DigestMaker
from services.core.types import CatchUp, ChatMessage, Member
from services.evaluation.data import ConversationExample
from services.evaluation.rouge import EvaluationRun, make_scorer, score_pair
from services.text.language import detect_language

SYSTEMS = ("narrative", "lead-3", "longest-3")


class CatchUpMaker(Protocol):
    """:func:`services.digest.catchup.catch_up`."""

    def __call__(
        self, window: list[ChatMessage], member: Member, digests: DigestMaker, *, language: str
    ) -> Awaitable[CatchUp]: ...


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


def as_member_chat(
    example: ConversationExample, rng: random.Random
) -> tuple[list[ChatMessage], Member, int]:
    """The example as a group where each turn answers the one before it (a dialogue's reply
    structure), a member chosen at random, and the index of the member's message after which
    they left (chosen at random among theirs but the last turn)."""
    ids = {
        author: number
        for number, author in enumerate(dict.fromkeys(a for a, _ in example.messages), start=1)
    }
    messages: list[ChatMessage] = []
    for number, (author, text) in enumerate(example.messages, start=1):
        previous = messages[-1] if messages else None
        answers = previous is not None and previous.author != author
        messages.append(
            ChatMessage(
                0,
                number,
                ids[author],
                author,
                60 * number,
                text,
                reply_to=previous.message_id if previous is not None and answers else 0,
                reply_to_user=previous.user_id if previous is not None and answers else 0,
            )
        )
    user_id = rng.choice(sorted(ids.values()))
    theirs = [i for i, m in enumerate(messages[:-1]) if m.user_id == user_id]
    left = rng.choice(theirs) if theirs else -1
    return messages, Member(user_id), left


async def evaluate_catchups(
    maker: DigestMaker,
    examples: Iterable[ConversationExample],
    catch_up: CatchUpMaker,
    seed: int = 0,
) -> dict[str, Any]:
    """How often a member's catch-up holds every reply to them, and how long it is.

    Each conversation gets a member chosen at random and the point they left (after one of
    their messages); the catch-up covers what came after. A reply to the member is a turn of
    someone else right after one of theirs. ``catch_up`` is
    :func:`services.digest.catchup.catch_up` (passed in: evaluation does not import the
    digest package, which imports the summarizer, which imports evaluation).
    """
    rng = random.Random(seed)
    complete = total = expected_total = 0
    catchup_words: list[int] = []
    window_words: list[int] = []
    for example in examples:
        messages, member, left = as_member_chat(example, rng)
        window = messages[left + 1 :]
        expected = {m.message_id for m in window if m.reply_to_user == member.user_id}
        found = await catch_up(window, member, maker, language=example.language)
        listed = {m.message_id for m in found.for_you}
        total += 1
        expected_total += len(expected)
        complete += expected <= listed
        lines = [*found.for_you, *found.open_questions, *found.decisions]
        catchup_words.append(
            sum(len(m.text.split()) for m in lines)
            + sum(len(s.text.split()) for s in found.narrative)
        )
        window_words.append(
            sum(len(m.text.split()) for m in window if m.user_id != member.user_id)
        )
    if not total:
        raise CondensaError("no conversations to evaluate")
    return {
        "conversations": total,
        "replies_to_member": expected_total,
        "complete_share": round(100 * complete / total, 2),
        "catchup_words_mean": round(sum(catchup_words) / total, 1),
        "window_words_mean": round(sum(window_words) / total, 1),
        "seed": seed,
    }
