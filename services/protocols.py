"""The typed interfaces between handlers and services, and the values they exchange."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Length(StrEnum):
    """How long a summary should be."""

    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


@dataclass(frozen=True)
class SummaryOptions:
    """What a caller asks of a summarizer.

    Attributes:
        method: backend name ("lexrank", …); empty means the service default.
        length: short / medium / long, mapped to a sentence count by the service.
        sentences: an explicit sentence count that overrides ``length``.
        language: ISO 639-1 code of the text; empty means detect it.
    """

    method: str = ""
    length: Length = Length.MEDIUM
    sentences: int | None = None
    language: str = ""


@dataclass(frozen=True)
class Summary:
    """A finished summary.

    Attributes:
        method: the backend that produced it (after any fallback).
        language: ISO 639-1 code of the source text.
        sentences: the summary, one sentence per item (extractive ones in document order).
        source_sentences: how many sentences the source had.
        source_chars: characters in the source text.
        note: why the result differs from the request (a fallback), or empty.
        requested_method: the method asked for when a fallback replaced it, else empty.
    """

    method: str
    language: str
    sentences: list[str]
    source_sentences: int
    source_chars: int
    note: str = ""
    requested_method: str = ""

    @property
    def text(self) -> str:
        """The summary as one string, a sentence per line."""
        return "\n".join(self.sentences)

    @property
    def compression(self) -> float:
        """Share of the source sentences kept (0–1)."""
        return len(self.sentences) / self.source_sentences if self.source_sentences else 0.0


@dataclass(frozen=True)
class Keyphrase:
    """A ranked keyphrase with its relevance score (higher is better)."""

    phrase: str
    score: float


@dataclass(frozen=True)
class KeywordResult:
    """Keyphrases of a text, best first."""

    language: str
    keyphrases: list[Keyphrase] = field(default_factory=list)


@dataclass(frozen=True)
class ChatPreferences:
    """What a chat chose in /settings. Empty strings mean "use the default"."""

    method: str = ""
    length: Length = Length.MEDIUM
    language: str = ""


@dataclass(frozen=True)
class Prompt:
    """What to generate from.

    Attributes:
        text: the prompt (mode "continue") or the user's question/instruction ("instruct").
        instruct: use the model's chat template with a user turn (instruct models).
        context: text the instruction refers to (a replied-to message), or empty.
        system: a system message for instruct mode, or empty.
    """

    text: str
    instruct: bool = True
    context: str = ""
    system: str = ""


@dataclass(frozen=True)
class DocumentText:
    """The text of a document and what it was.

    Attributes:
        text: the extracted text (possibly only the first part).
        kind: one of :data:`SUPPORTED`.
        pages: pages (PDF) or chapters (EPUB) in the whole document, when known.
        words: words in the whole extracted text before any cut.
        pages_read: pages or chapters the text covers when it was cut, else None.
        truncated: only the first part of the document is in ``text``.
    """

    text: str
    kind: str
    pages: int | None
    words: int
    pages_read: int | None = None
    truncated: bool = False

    def describe(self, name: str) -> str:
        """ "report.pdf · 34 pages · 12,400 words"."""
        parts = [name]
        if self.pages is not None:
            unit = "chapters" if self.kind == "epub" else "pages"
            parts.append(f"{self.pages:,} {unit}" if self.pages != 1 else f"1 {unit[:-1]}")
        parts.append(f"{self.words:,} words")
        return " · ".join(parts)


@dataclass(frozen=True)
class ChatMessage:
    """One stored group message.

    Attributes:
        chat_id: the group.
        message_id: its id in the group (links point at it).
        user_id: the author (0 when unknown).
        author: the author's display name.
        date: Unix time it was sent.
        text: its text or caption.
    """

    chat_id: int
    message_id: int
    user_id: int
    author: str
    date: int
    text: str


@dataclass(frozen=True)
class DigestSettings:
    """A group's digest switch, schedule and the point the previous digest reached."""

    chat_id: int
    enabled: bool = False
    schedule: str = ""
    timezone: str = ""
    last_digest_date: int = 0
    language: str = ""


@dataclass(frozen=True)
class Topic:
    """One topic of a digest: a few words, how many messages, and its most typical message."""

    words: list[str]
    message_count: int
    quote: ChatMessage | None = None


@dataclass(frozen=True)
class ChatDigest:
    """What a window of group messages was about.

    Attributes:
        language: ISO 639-1 code of most of the messages.
        message_count: messages in the window.
        participants: distinct authors.
        first_date / last_date: Unix times of the oldest and newest message.
        keyphrases: (phrase, number of messages it came up in), best first.
        topics: 3–6 topics when the window allows it.
        quotes: the most representative messages, one per topic, in topic order.
    """

    language: str
    message_count: int
    participants: int
    first_date: int
    last_date: int
    keyphrases: list[tuple[str, int]] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)

    @property
    def quotes(self) -> list[ChatMessage]:
        """The representative message of each topic that has one."""
        return [topic.quote for topic in self.topics if topic.quote is not None]


@runtime_checkable
class Summarizer(Protocol):
    """Turns text into a :class:`Summary`."""

    async def summarize(self, text: str, options: SummaryOptions) -> Summary:
        """Summarize ``text``; raise a :class:`services.errors.CondensaError` on bad input."""
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


@runtime_checkable
class DocumentReader(Protocol):
    """Turns a file's bytes into text, safely."""

    async def read(self, data: bytes, name: str) -> DocumentText:
        """Text of ``data`` (a file called ``name``); raises a ``CondensaError`` otherwise."""
        ...


@runtime_checkable
class LinkReader(Protocol):
    """Fetches a link safely and reads its main text."""

    async def read_link(self, url: str) -> tuple[str, DocumentText]:
        """(display name, text) of ``url``; raises ``FetchBlocked`` and friends otherwise."""
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
        self, chat_id: int, last: int | None = None, since: int | None = None
    ) -> list[ChatMessage]:
        """A window of a group's messages, oldest first: the newest ``last`` or those after
        ``since`` (Unix time)."""
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
