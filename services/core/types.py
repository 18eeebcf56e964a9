"""The values handlers and services exchange: options, results, messages, settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

MODEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
"""Names of models and heads saved under ``DATA_DIR/models`` (``llm:<name>``,
``extractive:<name>``)."""
RESERVED_MODEL_NAMES = frozenset({"hub", "smollm2-135m-instruct", "auto"})
"""Directories under ``DATA_DIR/models`` that hold other things, and the shipped ``auto``."""


def model_name_problem(name: str) -> str:
    """Why ``name`` cannot name a saved model, or empty when it can."""
    if MODEL_NAME_RE.match(name) and name not in RESERVED_MODEL_NAMES:
        return ""
    return (
        f"model name {name!r}: use 1-32 lower-case letters, digits, '-' or '_' "
        f"(not {' or '.join(sorted(RESERVED_MODEL_NAMES))})"
    )


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
        citations: for a written (abstractive) summary, per sentence, the 0-based indices in
            ``quotes`` of the source sentences that support it; empty when not grounded.
        quotes: the cited source sentences, in order of first citation.
        flagged: per sentence, whether the source lacks some of its names, numbers or words.
        dropped: sentences left out because the source does not support them.
    """

    method: str
    language: str
    sentences: list[str]
    source_sentences: int
    source_chars: int
    note: str = ""
    requested_method: str = ""
    citations: list[list[int]] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)
    dropped: int = 0

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
        ocr_confidence: set when the text was read by OCR (a photo, a scan): Tesseract's
            mean word confidence, 0–100.
    """

    text: str
    kind: str
    pages: int | None
    words: int
    pages_read: int | None = None
    truncated: bool = False
    ocr_confidence: float | None = None

    @property
    def page_unit(self) -> str:
        """What ``pages`` counts: "chapters" for EPUB, else "pages"."""
        return "chapters" if self.kind == "epub" else "pages"


@dataclass(frozen=True)
class Transcript:
    """What was said in a voice note or an audio file.

    Attributes:
        text: the transcript, one line per segment the recognizer found.
        language: the spoken language (ISO 639-1), detected or as asked.
        seconds: the length of the audio.
        backend: who transcribed it ("whisper-base", the server's model name).
    """

    text: str
    language: str
    seconds: float
    backend: str

    @property
    def words(self) -> int:
        """Words in the transcript."""
        return len(self.text.split())


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
    thread_id: int = 0
    """The forum topic thread it was posted in (0 outside forums)."""
    reply_to: int = 0
    """The message it replies to (0 when none)."""
    reply_to_user: int = 0
    """The author of the message it replies to (0 when none or unknown)."""
    reactions: int = 0
    """How many reactions it has (0 when the bot cannot see them: it must be an admin)."""
    pinned: bool = False
    """Whether it was pinned while kept."""
    shared_document: bool = False
    """Whether it forwarded a document into the group (its caption is the text kept)."""


@dataclass(frozen=True)
class DigestSentence:
    """One sentence of a digest's narrative and the messages it rests on.

    Attributes:
        text: the sentence (quoted from a message, or written by a model).
        sources: the messages it was taken from or is supported by, oldest first.
        flagged: a written sentence the messages do not support (names, numbers or content
            words they do not contain).
    """

    text: str
    sources: list[ChatMessage]
    flagged: bool = False

    @property
    def author(self) -> str:
        """Who said it, when it is one person's message ("" otherwise)."""
        authors = {m.author for m in self.sources}
        return self.sources[0].author if len(authors) == 1 else ""

    def plain(self) -> str:
        """The sentence as plain text, a quoted one with its author ("Ana: …")."""
        quoted = len(self.sources) == 1 and self.text in self.sources[0].text
        return f"{self.author}: {self.text}" if quoted and self.author else self.text


@dataclass(frozen=True)
class HistoryAnswer:
    """What ``/ask`` found in a chat's history.

    Attributes:
        messages: the messages retrieved, most relevant first ([] when nothing is relevant).
        sentences: the answer: the retrieved messages themselves, or a model's sentences each
            linked to the messages that support it.
        written_by: "" for a quoted answer, else the model that wrote it.
    """

    messages: list[ChatMessage]
    sentences: list[DigestSentence]
    written_by: str = ""


@dataclass(frozen=True)
class DigestSettings:
    """A group's digest switch, schedule and the point the previous digest reached."""

    chat_id: int
    enabled: bool = False
    schedule: str = ""
    timezone: str = ""
    last_digest_date: int = 0


@dataclass(frozen=True)
class Topic:
    """One topic of a digest: a few words, how many messages, its most typical message, what
    was said about it (1–3 sentences) and who took part, most active first."""

    words: list[str]
    message_count: int
    quote: ChatMessage | None = None
    sentences: list[DigestSentence] = field(default_factory=list)
    people: list[str] = field(default_factory=list)


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
        tldr: the sentences of the "in short" line at the top.
        written_by: "" for sentences taken from the messages, else the model that wrote them.
    """

    language: str
    message_count: int
    participants: int
    first_date: int
    last_date: int
    keyphrases: list[tuple[str, int]] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    tldr: list[DigestSentence] = field(default_factory=list)
    written_by: str = ""

    def narrative(self) -> list[DigestSentence]:
        """The TL;DR followed by each topic's sentences: what the digest says in words."""
        return [*self.tldr, *(s for topic in self.topics for s in topic.sentences)]


@dataclass(frozen=True)
class Member:
    """Who the catch-up is for."""

    user_id: int
    username: str = ""
    """Their @username without the "@" ("" when they have none)."""


@dataclass(frozen=True)
class CatchUp:
    """A member's catch-up of one window.

    Attributes:
        messages: messages in the window (the member's own included).
        for_you: replies to the member and mentions of them.
        open_questions: questions nobody answered.
        decisions: messages with a decision, a date, a time or an amount.
        narrative: the digest's sentences about the rest, within the word budget.
    """

    messages: int
    for_you: list[ChatMessage] = field(default_factory=list)
    open_questions: list[ChatMessage] = field(default_factory=list)
    decisions: list[ChatMessage] = field(default_factory=list)
    narrative: list[DigestSentence] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing happened in the window (besides the member's own messages)."""
        return not (self.for_you or self.open_questions or self.decisions or self.narrative)


@dataclass(frozen=True)
class ChatExport:
    """One exported chat: its Bot API id (when the export says), title and text messages."""

    chat_id: int | None
    title: str
    messages: list[ChatMessage] = field(default_factory=list)


@dataclass(frozen=True)
class Usage:
    """What one user or chat used on one UTC day (counts only, never text)."""

    requests: int = 0
    chars: int = 0
    tokens: int = 0
    refused: int = 0


@dataclass(frozen=True)
class UsageStats:
    """Counts over a window of days, for the operator's ``/stats``.

    Attributes:
        users / chats: distinct users and chats that made requests.
        requests / tokens / refused: totals (refused: access or quota refusals).
        answer_p50 / answer_p95: seconds from an update to the end of its handling.
        top_users: (user id, requests), most first.
    """

    users: int
    chats: int
    requests: int
    tokens: int
    refused: int
    answer_p50: float
    answer_p95: float
    top_users: list[tuple[int, int]] = field(default_factory=list)
