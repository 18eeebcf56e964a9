"""A member's catch-up: what happened in a group since they were last there, theirs first.

Given the kept messages of a window and who the member is, :func:`catch_up` picks, in order:

1. **For you**: replies to the member's messages and ``@username`` mentions of them;
2. **Open questions**: questions to the group or to the member that nobody answered (no later
   message replies to them);
3. **Decisions and dates**: messages that fix a date, a time or an amount (found by
   ``dateparser`` after a cheap prefilter, and numbers with units) or say that something was
   decided;
4. **The rest, in short**: the digest narrative of everything else, within a word budget.

Each item is a kept message, so every line of the reply links to the message it comes from.
The member's own messages are never listed. Pure selection (no I/O) except the narrative, which
the digest service writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.core.errors import EmptyInput
from services.core.protocols import DigestMaker
from services.core.types import CatchUp, ChatMessage, DigestSentence, Member

_QUESTION = re.compile(r"\?\s*(?:[\W_]*\s*)?$|^\s*¿", re.M)
_DECIDED = re.compile(
    r"\b(?:decided|agreed|approved|confirmed|settled|moved to|postponed|cancel+ed|deadline|"
    r"decidimos|decidido|acordamos|acordado|aprobado|confirmado|queda(?:mos)?|se mueve|"
    r"aplazad[oa]|cancelad[oa]|plazo)\b",
    re.I,
)
_WHEN_HINT = re.compile(
    r"\d|\b(?:today|tomorrow|tonight|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"next week|january|february|march|april|may|june|july|august|september|october|"
    r"november|december|hoy|mañana|lunes|martes|miércoles|jueves|viernes|sábado|domingo|"
    r"semana que viene|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|"
    r"octubre|noviembre|diciembre|noon|midnight|mediodía)\b",
    re.I,
)
_AMOUNT = re.compile(
    r"(?:[$€£]\s?\d[\d.,]*|\d[\d.,]*\s?(?:%|€|\$|£|euros?|dollars?|dólares|pesos|"
    r"k\b|million|millones|mil\b))",
    re.I,
)


def mentions(text: str, member: Member) -> bool:
    """Whether ``text`` mentions the member by @username."""
    if not member.username:
        return False
    pattern = rf"(?<![\w@])@{re.escape(member.username)}\b"
    return re.search(pattern, text, re.I) is not None


def is_question(text: str) -> bool:
    """A message that asks something (a "?" ending a line, or Spanish "¿" opening one)."""
    return _QUESTION.search(text) is not None


def fixes_something(text: str, languages: Iterable[str] = ("en", "es")) -> bool:
    """Whether a message fixes a date, a time or an amount, or says something was decided."""
    if _DECIDED.search(text) or _AMOUNT.search(text):
        return True
    if not _WHEN_HINT.search(text):
        return False
    from dateparser.search import search_dates

    found = search_dates(text, languages=list(languages), settings={"PREFER_DATES_FROM": "future"})
    return bool(found)


def select(
    window: list[ChatMessage],
    member: Member,
    authors: dict[int, int] | None = None,
) -> tuple[list[ChatMessage], list[ChatMessage], list[ChatMessage], list[ChatMessage]]:
    """(for you, open questions, decisions, the rest) of ``window`` (oldest first).

    Args:
        window: the messages since the member was last here.
        member: who it is for; their own messages are in none of the lists.
        authors: message id → author id of older messages, to know whose message a reply in
            the window answers when the store did not record it.
    """
    authors = {**(authors or {}), **{m.message_id: m.user_id for m in window}}
    answered = {m.reply_to for m in window if m.reply_to}
    for_you, questions, decisions, rest = [], [], [], []
    for message in window:
        if message.user_id == member.user_id and member.user_id:
            continue
        replied_to = message.reply_to_user or authors.get(message.reply_to, 0)
        if (message.reply_to and replied_to == member.user_id) or mentions(message.text, member):
            for_you.append(message)
        elif (
            is_question(message.text)
            and message.message_id not in answered
            and replied_to in (0, member.user_id)
        ):
            questions.append(message)
        elif fixes_something(message.text):
            decisions.append(message)
        else:
            rest.append(message)
    return for_you, questions, decisions, rest


async def catch_up(
    window: list[ChatMessage],
    member: Member,
    digests: DigestMaker,
    authors: dict[int, int] | None = None,
    language: str = "",
    narrative_words: int = 120,
) -> CatchUp:
    """The member's catch-up of ``window``: :func:`select`, then the digest narrative of the
    rest cut to ``narrative_words``."""
    for_you, questions, decisions, rest = select(window, member, authors)
    narrative: list[DigestSentence] = []
    if rest:
        try:
            digest = await digests.digest(rest, language)
        except EmptyInput:
            digest = None
        words = 0
        for sentence in digest.narrative() if digest is not None else []:
            words += len(sentence.text.split())
            if narrative and words > narrative_words:
                break
            narrative.append(sentence)
    return CatchUp(len(window), for_you, questions, decisions, narrative)
