"""What the handlers are given: the services they call and the limits they enforce."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from telegram import Chat, User

from services.core.protocols import (
    AccessLedger,
    DigestMaker,
    DocumentReader,
    ExportReader,
    HistorySearch,
    KeywordExtractor,
    LinkReader,
    MessageArchive,
    SpeechReader,
    Store,
    Summarizer,
    TextGenerator,
)
from services.core.types import ChatMessage


def subjects_of(entity: User | Chat | None) -> list[str]:
    """The identifiers a rule may name ``entity`` by: its id and its @username."""
    if entity is None:
        return []
    keys = [str(entity.id)]
    if entity.username:
        keys.append("@" + entity.username.lower())
    return keys


@dataclass(frozen=True)
class Quotas:
    """Daily limits per user and per group; 0 means unlimited."""

    user_requests: int = 200
    user_chars: int = 2_000_000
    user_tokens: int = 50_000
    group_requests: int = 1_000
    group_chars: int = 10_000_000
    group_tokens: int = 200_000


@dataclass(frozen=True)
class AccessPolicy:
    """The operator's settings: allow-lists (empty: everyone), admins and quotas."""

    allowed_users: frozenset[str] = frozenset()
    allowed_chats: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    quotas: Quotas = field(default_factory=Quotas)

    @property
    def restricted(self) -> bool:
        """Whether only listed users and chats may use the bot."""
        return bool(self.allowed_users or self.allowed_chats)

    def is_admin(self, user: User | None) -> bool:
        """Whether ``user`` is one of the operators."""
        return any(key in self.admins for key in subjects_of(user))


@dataclass(frozen=True)
class Limits:
    """Chat-facing limits (copied from Settings by the composition root)."""

    auto_summary_min_chars: int = 600
    forward_batch_seconds: float = 2.0
    forward_batch_max_messages: int = 50
    max_input_chars: int = 100_000
    max_file_bytes: int = 20 * 1024 * 1024
    keywords_top_n: int = 10
    stream_edit_seconds_private: float = 1.0
    stream_edit_seconds_group: float = 3.0
    digest_retention_days: int = 7
    digest_max_messages: int = 20_000
    ocr_min_confidence: float = 60.0
    catchup_after_hours: float = 24.0


class Coordination(Protocol):
    """What processes serving one bot must agree on: a scheduled job fires once, one digest
    of a group at a time. In one process it is memory; with several workers, Redis."""

    async def once(self, name: str, seconds: float) -> bool:
        """True for the first caller of ``name`` within ``seconds`` (across processes)."""
        ...

    async def hold(self, name: str, seconds: float) -> str | None:
        """Take the lock ``name`` for at most ``seconds``; its token, or None when held."""
        ...

    async def release(self, name: str, token: str) -> None:
        """Give the lock back (only if ``token`` still holds it)."""
        ...

    async def seen(self, name: str) -> bool:
        """Whether ``name`` was marked (and has not expired)."""
        ...

    async def mark(self, name: str, seconds: float) -> None:
        """Mark ``name`` for ``seconds`` (something was done: do not do it again)."""
        ...


class LocalCoordination:
    """:class:`Coordination` in one process's memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, tuple[float, str]] = {}

    def _take(self, name: str, seconds: float) -> str | None:
        now = self._clock()
        held = self._until.get(name)
        if held is not None and held[0] > now:
            return None
        token = secrets.token_hex(8)
        self._until[name] = (now + seconds, token)
        for key in [k for k, (until, _) in self._until.items() if until <= now]:
            del self._until[key]
        return token

    async def once(self, name: str, seconds: float) -> bool:
        """True for the first caller within ``seconds``."""
        return self._take("once:" + name, seconds) is not None

    async def hold(self, name: str, seconds: float) -> str | None:
        """Take the lock for at most ``seconds``."""
        return self._take("hold:" + name, seconds)

    async def release(self, name: str, token: str) -> None:
        """Give the lock back."""
        held = self._until.get("hold:" + name)
        if held is not None and held[1] == token:
            del self._until["hold:" + name]

    async def seen(self, name: str) -> bool:
        """Whether ``name`` was marked within its time."""
        held = self._until.get("mark:" + name)
        return held is not None and held[0] > self._clock()

    async def mark(self, name: str, seconds: float) -> None:
        """Mark ``name`` for ``seconds``."""
        self._until["mark:" + name] = (self._clock() + seconds, "")


class ForwardedConversations:
    """The last conversation each private chat forwarded, for ``/ask`` about it.

    Kept in memory only, for ``keep_seconds``, at most ``chats`` chats: a forward is something
    the user asked about now, not history to keep.
    """

    def __init__(self, keep_seconds: float = 3600.0, chats: int = 1000) -> None:
        self._keep = keep_seconds
        self._chats = chats
        self._kept: dict[int, tuple[float, list[ChatMessage]]] = {}

    def remember(self, chat_id: int, messages: list[ChatMessage], now: float) -> None:
        """Keep ``messages`` as the chat's forwarded conversation (replacing the previous)."""
        self._kept.pop(chat_id, None)
        self._kept[chat_id] = (now, messages)
        while len(self._kept) > self._chats:
            self._kept.pop(next(iter(self._kept)))

    def recall(self, chat_id: int, now: float) -> list[ChatMessage]:
        """The chat's forwarded conversation, [] when none or expired."""
        kept = self._kept.get(chat_id)
        if kept is None or now - kept[0] > self._keep:
            self._kept.pop(chat_id, None)
            return []
        return kept[1]


class JobWatch(Protocol):
    """Watches the job queue's jobs (the bot's supervisor): a job that stops ending well
    turns ``/healthz`` to 503."""

    def expect(self, name: str, stale_after: float | None) -> None:
        """``name`` should end well at least every ``stale_after`` seconds (None: no rule)."""
        ...

    def ran(self, name: str, error: BaseException | None = None) -> None:
        """A run of ``name`` ended, well or with ``error``."""
        ...


def watched(
    jobs: JobWatch | None, name: str, callback: Callable[[Any], Awaitable[None]]
) -> Callable[[Any], Coroutine[Any, Any, None]]:
    """``callback`` as a job callback whose every run is reported to ``jobs`` (an error is
    raised on, to PTB's error handler, which logs it)."""

    async def run(context: Any) -> None:
        try:
            await callback(context)
        except Exception as exc:
            if jobs is not None:
                jobs.ran(name, exc)
            raise
        if jobs is not None:
            jobs.ran(name)

    run.__name__ = run.__qualname__ = name  # the job's name in PTB's and APScheduler's logs
    return run


@dataclass(frozen=True)
class HandlerDeps:
    """Services handed to every handler module explicitly (no globals)."""

    summarizer: Summarizer
    keywords: KeywordExtractor
    store: Store
    limits: Limits
    documents: DocumentReader
    links: LinkReader
    generator: TextGenerator | None = None
    speech: SpeechReader | None = None
    """Voice notes to text; None where no recognizer is set up (a sentence says so)."""
    archive: MessageArchive | None = None
    digests: DigestMaker | None = None
    exports: ExportReader | None = None
    access: AccessPolicy = field(default_factory=AccessPolicy)
    ledger: AccessLedger | None = None
    clock: Callable[[], float] = time.time
    history: HistorySearch | None = None
    finish_updates: Callable[[list[int]], Awaitable[None]] | None = None
    """Marks deferred updates handled (the delivery ledger); None outside the bot."""
    queue_wait: Callable[[], tuple[int, float]] | None = None
    """(calls ahead, expected seconds) of the model executor, for the placeholder."""
    forwarded: ForwardedConversations = field(default_factory=ForwardedConversations)
    coordination: Coordination = field(default_factory=LocalCoordination)
    """Once-only jobs and per-group locks, shared by every worker of the bot."""
    jobs: JobWatch | None = None
    """Told what each scheduled job is expected to do and how each run ended (/healthz)."""
