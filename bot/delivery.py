"""Every update answered once, in order, across restarts, edits and bursts.

- **Durable intake.** :class:`Intake` writes each update to the store's inbox (sealed with its
  chat's key) before Telegram is told it arrived: in polling mode the next ``getUpdates``
  confirms the offset only after the write; in webhook mode the 200 is sent after it. A
  duplicate ``update_id`` is ignored. At start the updates not marked done are handled again.
- **Order.** :class:`ChatOrderedProcessor` (PTB's ``BaseUpdateProcessor``) runs one chat's
  updates one at a time, in arrival order, and different chats in parallel; after a handler
  returns, the update is marked done, unless a handler deferred it (a forwarded message waiting
  in a batch is done when the batch is answered).
- **Idempotent replies.** :class:`PacedRequests` (PTB's ``BaseRateLimiter``) records the result
  of every message sent while handling an update (its n-th send); when the update is handled
  again after a crash, a send already delivered returns the recorded message instead of sending
  a second one, so the re-run edits the same placeholder into the answer.
- **Outbound pace** (same class, through a :class:`Pace`): per private chat a burst of 3 then 1
  message per second, per group 20 per minute, 30 per second overall (:class:`LocalPace`:
  ``aiolimiter`` leaky buckets; with ``REDIS_URL`` ``bot.cluster.RedisPace`` shares them across
  workers; edits and chat actions count, and a chat action is skipped rather than waited for
  when its chat or the bot is at the limit); a 429 ``retry_after`` delays that chat only.

PTB offers the two extension points; the bookkeeping is ours because it is the point: which
update a send belongs to and whether it already happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from aiolimiter import AsyncLimiter
from telegram import Update
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter, BaseUpdateProcessor

from handlers.work import UpdateWork, current_work

logger = logging.getLogger(__name__)

SEND_ENDPOINTS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "sendAudio", "sendVoice", "sendMediaGroup"}
)
"""Methods that put a new message in a chat: recorded per update, never repeated on a re-run."""


class DeliveryLedger(Protocol):
    """The store's side of delivery (``SQLStore`` implements it on SQLite and PostgreSQL)."""

    async def inbox_add(self, updates: list[tuple[int, int, str]]) -> list[int]:
        """Keep updates; the ids that were new."""
        ...

    async def inbox_done(self, update_ids: list[int]) -> None:
        """Mark updates handled."""
        ...

    async def inbox_pending(self) -> list[tuple[int, str]]:
        """Updates not handled yet, oldest first."""
        ...

    async def sent_result(self, update_id: int, seq: int) -> str | None:
        """The recorded result of an update's ``seq``-th send."""
        ...

    async def record_sent(self, update_id: int, seq: int, chat_id: int, result: str) -> None:
        """Record an update's ``seq``-th send."""
        ...


def chat_key(update: object) -> int | None:
    """The chat an update belongs to (its order domain); None when it has none."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None


def jumps_the_queue(update: object) -> bool:
    """Updates that must not wait behind their chat's running work: ``/cancel`` (it stops
    that work) and button presses (they answer at once and change nothing already queued)."""
    if not isinstance(update, Update):
        return False
    if update.callback_query is not None:
        return True
    text = update.message.text if update.message is not None else None
    if not text:
        return False
    return text.split(maxsplit=1)[0].split("@")[0].lower() == "/cancel"


class ChatOrderedProcessor(BaseUpdateProcessor):
    """One chat's updates in arrival order, chats in parallel; done-marking in the ledger.

    Args:
        max_concurrent_updates: updates handled at once across chats.
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        # PTB's own semaphore would be held while an update waits for its chat's turn; ours
        # is taken only once it is this update's turn.
        super().__init__(1_000_000)
        self._slots = asyncio.Semaphore(max_concurrent_updates)
        self.ledger: DeliveryLedger | None = None
        self._tails: dict[int, asyncio.Future[None]] = {}
        self._running: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running(self) -> int:
        """Updates being handled now."""
        return len(self._running)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for this chat's earlier updates, then handle this one within the concurrency
        limit (waiting for a turn holds no slot, so one busy chat never blocks the others);
        mark it done unless a handler deferred it."""
        key = None if jumps_the_queue(update) else chat_key(update)
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        previous = self._tails.get(key) if key is not None else None
        if key is not None:
            self._tails[key] = turn
        try:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(previous)
            async with self._slots:
                await self._handle(update, coroutine)
        finally:
            turn.set_result(None)
            if key is not None and self._tails.get(key) is turn:
                del self._tails[key]

    async def _handle(self, update: object, coroutine: Awaitable[Any]) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        work = UpdateWork(update_id) if update_id is not None else None
        token = current_work.set(work)
        if update_id is not None:
            self._running.add(update_id)
            self._idle.clear()
        try:
            await coroutine
        finally:
            current_work.reset(token)
            if update_id is not None:
                self._running.discard(update_id)
                if not self._running:
                    self._idle.set()
        if work is not None and not work.deferred:
            await self.finish([work.update_id])

    async def wait_idle(self, seconds: float) -> int:
        """Wait up to ``seconds`` for the updates in hand; returns how many are still running."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), seconds)
        return len(self._running)

    async def finish(self, update_ids: list[int]) -> None:
        """Mark updates handled (a deferred update, once its work is done)."""
        if self.ledger is not None and update_ids:
            await self.ledger.inbox_done(update_ids)


def is_group(chat_id: int | str) -> bool:
    """Groups and channels have negative ids (or are named by @username)."""
    return isinstance(chat_id, str) or chat_id < 0


class Pace(Protocol):
    """How fast messages may go out: per chat, per group, overall."""

    async def has_capacity(self, chat_id: int | str) -> bool:
        """Whether a message to ``chat_id`` could go now without waiting."""
        ...

    async def acquire(self, chat_id: int | str) -> None:
        """Wait for a slot for one message to ``chat_id`` and take it."""
        ...

    async def pause(self, chat_id: int | str, seconds: float) -> None:
        """Telegram said 429 for this chat: hold its messages for ``seconds`` (and wait)."""
        ...


class LocalPace:
    """:class:`Pace` in one process (``aiolimiter`` leaky buckets).

    Args:
        private_burst / private_period: a private chat may get ``private_burst`` messages per
            ``private_period`` seconds (a burst, then ~1 per second).
        group_rate / group_period: messages per group per period (20 per minute).
        overall_rate: messages per second across every chat.
    """

    def __init__(
        self,
        private_burst: float = 3,
        private_period: float = 3,
        group_rate: float = 20,
        group_period: float = 60,
        overall_rate: float = 30,
    ) -> None:
        self._private = (private_burst, private_period)
        self._group = (group_rate, group_period)
        self._overall = AsyncLimiter(overall_rate, 1)
        self._limiters: dict[int | str, AsyncLimiter] = {}
        self._paused: dict[int | str, asyncio.Lock] = {}

    def _limiter(self, chat_id: int | str) -> AsyncLimiter:
        limiter = self._limiters.get(chat_id)
        if limiter is None:
            rate, period = self._group if is_group(chat_id) else self._private
            limiter = self._limiters[chat_id] = AsyncLimiter(rate, period)
            self._paused[chat_id] = asyncio.Lock()
        return limiter

    async def has_capacity(self, chat_id: int | str) -> bool:
        """Both the chat's and the overall bucket have room."""
        return self._overall.has_capacity() and self._limiter(chat_id).has_capacity()

    async def acquire(self, chat_id: int | str) -> None:
        """Wait while the chat is paused, then for its bucket and the overall one."""
        limiter = self._limiter(chat_id)
        async with self._paused[chat_id]:
            pass
        await limiter.acquire()
        await self._overall.acquire()

    async def pause(self, chat_id: int | str, seconds: float) -> None:
        """Hold the chat's next messages for ``seconds``."""
        self._limiter(chat_id)
        async with self._paused[chat_id]:
            await asyncio.sleep(seconds)


class PacedRequests(BaseRateLimiter[int]):
    """Outbound pace per chat, per group and overall, and sends recorded per update.

    Args:
        pace: the limits (:class:`LocalPace` in one process, ``RedisPace`` across workers).
        max_retries: retries after a 429 (each waits the ``retry_after`` Telegram asked for).
    """

    def __init__(self, pace: Pace | None = None, max_retries: int = 3) -> None:
        self.pace: Pace = pace or LocalPace()
        self._held: dict[int | str, asyncio.Lock] = {}
        self._max_retries = max_retries
        self.ledger: DeliveryLedger | None = None

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    def _chat_lock(self, chat_id: int | str) -> asyncio.Lock:
        lock = self._held.get(chat_id)
        if lock is None:
            lock = self._held[chat_id] = asyncio.Lock()
        return lock

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id: int | str | None = data.get("chat_id")
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)  # type: ignore[arg-type]
        if (
            endpoint == "sendChatAction"
            and chat_id is not None
            and not await self.pace.has_capacity(chat_id)
        ):
            return True  # "typing…" is cosmetic: never spend a message slot waiting for it
        work = current_work.get()
        seq = -1
        if work is not None and endpoint in SEND_ENDPOINTS and self.ledger is not None:
            seq = work.sends
            work.sends += 1
            recorded = await self.ledger.sent_result(work.update_id, seq)
            if recorded is not None:
                logger.info(
                    "update %s: send %d was delivered before; not repeated", work.update_id, seq
                )
                kept: bool | dict[str, Any] | list[dict[str, Any]] = json.loads(recorded)
                return kept
        result = await self._paced(callback, args, kwargs, chat_id, rate_limit_args)
        if seq >= 0 and work is not None and self.ledger is not None and isinstance(chat_id, int):
            await self.ledger.record_sent(work.update_id, seq, chat_id, json.dumps(result))
        return result

    async def _paced(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        chat_id: int | str | None,
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        retries = rate_limit_args if rate_limit_args is not None else self._max_retries
        for attempt in range(retries + 1):
            try:
                if chat_id is None:  # getUpdates, getMe, …: not messages, not paced
                    return await callback(*args, **kwargs)
                async with self._chat_lock(chat_id):
                    await self.pace.acquire(chat_id)
                    return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == retries:
                    raise
                with warnings.catch_warnings():  # PTB 22 warns that the type will change
                    warnings.simplefilter("ignore")
                    pause = exc.retry_after
                seconds = pause if isinstance(pause, int | float) else pause.total_seconds()
                logger.info("429 for chat %s: waiting %.1f s (that chat only)", chat_id, seconds)
                if chat_id is None:
                    await asyncio.sleep(seconds + 0.1)
                else:
                    # This chat's other sends wait (here and, through the pace, in every
                    # worker); every other chat goes on.
                    await self.pace.pause(chat_id, seconds + 0.1)
        raise AssertionError("unreachable")  # pragma: no cover


class Intake:
    """Writes updates durably before they are acknowledged, then queues them for handling.

    Args:
        ledger: the store's inbox.
        queue: the application's update queue.
        parse: JSON dict → ``Update`` (bound to the bot).
    """

    def __init__(
        self,
        ledger: DeliveryLedger,
        queue: asyncio.Queue[object],
        parse: Callable[[dict[str, Any]], Update],
    ) -> None:
        self._ledger = ledger
        self._queue = queue
        self._parse = parse

    async def accept(self, updates: list[Update]) -> int:
        """Keep these updates and queue the new ones; returns how many were new."""
        rows = [
            (u.update_id, chat_key(u) or 0, json.dumps(u.to_dict(), ensure_ascii=False))
            for u in updates
        ]
        new = set(await self._ledger.inbox_add(rows))
        for update in updates:
            if update.update_id in new:
                await self._queue.put(update)
        return len(new)

    async def replay(self) -> int:
        """Queue every update kept but not handled (after a crash or a restart)."""
        pending = await self._ledger.inbox_pending()
        for _, payload in pending:
            await self._queue.put(self._parse(json.loads(payload)))
        if pending:
            logger.info("re-handling %d updates not finished before the restart", len(pending))
        return len(pending)
