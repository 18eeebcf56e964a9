"""The typed interfaces between handlers and services: one ``Protocol`` per capability."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, runtime_checkable

from services.core.types import (
    CatchUp,
    ChatDigest,
    ChatExport,
    ChatMessage,
    ChatPreferences,
    DigestSettings,
    DocumentText,
    HistoryAnswer,
    KeywordResult,
    Member,
    Prompt,
    Summary,
    SummaryOptions,
    Transcript,
    Usage,
    UsageStats,
)

Progress = Callable[[float, float], Any]
"""``progress(seconds of audio, fraction transcribed)``."""


@runtime_checkable
class Summarizer(Protocol):
    """Turns text into a :class:`Summary`."""

    async def summarize(self, text: str, options: SummaryOptions) -> Summary:
        """Summarize ``text``; raise a :class:`services.core.errors.CondensaError` on bad input."""
        ...

    def methods(self) -> list[str]:
        """Method names a chat may choose, default first."""
        ...


@runtime_checkable
class KeywordExtractor(Protocol):
    """Ranks the keyphrases of a text."""

    async def extract(self, text: str, top_n: int = 10, language: str = "") -> KeywordResult:
        """Return up to ``top_n`` keyphrases of ``text``, best first."""
        ...


@runtime_checkable
class TextGenerator(Protocol):
    """Streams what a language model writes."""

    def stream(
        self, prompt: Prompt, cancel: threading.Event, max_new_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield text pieces; raise ``Busy`` at once when full; stop when ``cancel`` is set."""
        ...

    def expected_wait(self) -> tuple[int, float]:
        """For a request made now: how many are ahead of it, and about how many seconds it
        will wait before the model starts on it (0, 0.0 when a slot is free)."""
        ...


@runtime_checkable
class DocumentReader(Protocol):
    """Turns a file's bytes into text, safely."""

    async def read(self, data: bytes, name: str, language: str | None = None) -> DocumentText:
        """Text of ``data`` (a file called ``name``; ``language`` helps OCR); raises a
        ``CondensaError`` otherwise."""
        ...


@runtime_checkable
class Transcriber(Protocol):
    """Speech to text on decoded samples (16 kHz mono s16le); blocking, run in an executor."""

    name: str

    def transcribe(
        self, pcm: bytes, language: str | None, progress: Callable[[float], None] | None = None
    ) -> Transcript:
        """The transcript of ``pcm`` (``language`` when known, else detected); ``progress``
        is called with the fraction done as segments are recognized."""
        ...


@runtime_checkable
class SpeechReader(Protocol):
    """Voice notes and audio files to text, safely (decoded in the sandbox)."""

    async def transcribe(
        self, data: bytes, language: str | None = None, progress: Progress | None = None
    ) -> Transcript:
        """The transcript of ``data`` (any audio or video container); raises a
        ``CondensaError`` for what it cannot read. ``progress(seconds, fraction)`` is called
        on the event loop once the length is known and as the transcription advances."""
        ...


@runtime_checkable
class LinkReader(Protocol):
    """Fetches a link safely and reads its main text."""

    async def read_link(self, url: str) -> tuple[str, DocumentText]:
        """(display name, text) of ``url``; raises ``FetchBlocked`` and friends otherwise."""
        ...

    def find_link(self, text: str) -> str | None:
        """The URL a message is about (one it is, or mostly is), else None."""
        ...


@runtime_checkable
class ExportReader(Protocol):
    """Reads a Telegram Desktop chat export (``result.json`` or its zip), safely."""

    async def read_export(self, data: bytes) -> ChatExport:
        """The exported chat; raises ``NotAnExport`` or ``InputTooLarge`` otherwise."""
        ...


@runtime_checkable
class EmbeddingBackend(Protocol):
    """A sentence-embedding model: documents and short phrases to unit-length vectors.

    Attributes:
        name: a short stable name ("minilm", "e5"), used as a cache key.
    """

    name: str

    def embed(self, documents: list[str], verbose: bool = False) -> Any:
        """An (n, d) float array of unit-length embeddings of ``documents`` (passages)."""
        ...

    def embed_phrases(self, phrases: list[str]) -> Any:
        """An (n, d) float array of unit-length embeddings of short phrases (queries)."""
        ...


@runtime_checkable
class Store(Protocol):
    """Persistent per-chat state."""

    async def get_preferences(self, chat_id: int) -> ChatPreferences:
        """Preferences of a chat (defaults when it never chose)."""
        ...

    async def set_preferences(self, chat_id: int, preferences: ChatPreferences) -> None:
        """Save a chat's preferences."""
        ...

    async def close(self) -> None:
        """Release the underlying connection."""
        ...


@runtime_checkable
class DigestMaker(Protocol):
    """Turns a window of group messages into a :class:`ChatDigest` and a word cloud."""

    async def digest(self, messages: list[ChatMessage], language: str = "") -> ChatDigest:
        """Digest ``messages`` (oldest first); raise ``EmptyInput`` when there is too little."""
        ...

    async def word_cloud(self, digest: ChatDigest) -> bytes:
        """A PNG image of the digest's keyphrases sized by how often they came up."""
        ...

    async def catch_up(
        self,
        window: list[ChatMessage],
        member: Member,
        authors: dict[int, int] | None = None,
        language: str = "",
    ) -> CatchUp:
        """A member's catch-up of ``window``: what concerns them first, then the rest."""
        ...


class HistorySearch(Protocol):
    """Answers a question from a chat's messages (``/ask`` over the kept history)."""

    async def ask(
        self, question: str, messages: list[ChatMessage], language: str = ""
    ) -> HistoryAnswer:
        """The messages relevant to ``question`` and an answer resting on them."""
        ...


@runtime_checkable
class MessageArchive(Protocol):
    """Group messages kept for digests, with the privacy rules that govern them."""

    async def digest_settings(self, chat_id: int) -> DigestSettings:
        """A group's digest settings (disabled when never set)."""
        ...

    async def set_digest_enabled(self, chat_id: int, enabled: bool) -> None:
        """Turn storing and digests on or off for a group (off deletes its messages)."""
        ...

    async def set_schedule(self, chat_id: int, schedule: str, timezone: str) -> None:
        """Store a daily digest time ("" to switch it off)."""
        ...

    async def scheduled_chats(self) -> list[DigestSettings]:
        """Every enabled group with a schedule."""
        ...

    async def mark_digest(self, chat_id: int, last_date: int) -> None:
        """Remember the newest message date a digest covered."""
        ...

    async def save_messages(self, messages: list[ChatMessage]) -> int:
        """Insert or update (edits) messages, skipping opted-out authors; returns how many."""
        ...

    async def messages(
        self,
        chat_id: int,
        last: int | None = None,
        since: int | None = None,
        until: int | None = None,
        first_id: int | None = None,
        last_id: int | None = None,
        thread_id: int | None = None,
    ) -> list[ChatMessage]:
        """A window of a group's messages, oldest first: the newest ``last`` of those after
        ``since`` and before ``until`` (Unix times), with ids from ``first_id`` to ``last_id``,
        in forum thread ``thread_id``."""
        ...

    async def set_reactions(
        self, chat_id: int, message_id: int, total: int | None = None, change: int = 0
    ) -> bool:
        """Set a kept message's reaction count to ``total`` (anonymous counts) or move it by
        ``change`` (one member's reactions); False when the message is not kept."""
        ...

    async def mark_pinned(self, chat_id: int, message_id: int) -> bool:
        """Remember that a kept message was pinned; False when it is not kept."""
        ...

    async def set_catchup_auto(self, chat_id: int, user_id: int, enabled: bool, now: int) -> None:
        """Opt a member in to (or out of) the automatic catch-up."""
        ...

    async def catchup_seen(self, chat_id: int, user_id: int, now: int) -> int | None:
        """Record that an opted-in member wrote at ``now``; when they wrote before (None when
        they did not opt in)."""
        ...

    async def set_opt_out(self, chat_id: int, user_id: int, opted_out: bool) -> int:
        """Record a user's choice; opting out deletes their messages. Returns rows deleted."""
        ...

    async def forget_user(self, chat_id: int, user_id: int) -> int:
        """Delete every stored message of a user in a group; returns how many."""
        ...

    async def forget_chat(self, chat_id: int) -> None:
        """Delete everything stored about a group."""
        ...

    async def purge_stored_before(self, cutoff: int) -> int:
        """Delete messages stored before Unix time ``cutoff``; returns how many."""
        ...


@runtime_checkable
class AccessLedger(Protocol):
    """Who may use the bot and how much they used: rules, quotas, counters, audit (counts only).

    Subjects are ``"<id>"`` or ``"@username"`` (lower-case); days are UTC ``YYYY-MM-DD``.
    """

    async def access_rules(self, subjects: list[str]) -> dict[str, bool]:
        """The stored allow (True) / deny (False) rule of each subject that has one."""
        ...

    async def set_access_rule(self, subject: str, allowed: bool, by: int) -> None:
        """Store an allow or deny rule, audited as made by ``by``."""
        ...

    async def quota_override(self, user_id: int) -> int | None:
        """A user's own daily request quota, when the operator set one."""
        ...

    async def set_quota_override(self, user_id: int, requests: int, by: int) -> None:
        """Set a user's daily request quota, audited as made by ``by``."""
        ...

    async def usage(self, day: str, scope: str, subject: int) -> Usage:
        """What ``subject`` (scope "user" or "chat") used on ``day``."""
        ...

    async def add_usage(
        self, day: str, scope: str, subject: int, usage: Usage, once_key: str | None = None
    ) -> None:
        """Add ``usage`` to the day's counters of ``subject``, once per ``once_key``."""
        ...

    async def record_answer_time(self, day: str, seconds: float) -> None:
        """Remember how long one request took to handle."""
        ...

    async def first_notice_today(self, chat_id: int, day: str) -> bool:
        """True the first time a chat is told it may not use the bot on ``day``."""
        ...

    async def usage_stats(self, days: list[str]) -> UsageStats:
        """Counts over ``days``."""
        ...

    async def audit_log(self, limit: int = 20) -> list[tuple[int, int, str, str, str]]:
        """The newest operator changes: (unix time, admin id, action, subject, value)."""
        ...
