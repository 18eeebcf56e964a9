"""Outbound pace and sends recorded per update.

- **Idempotent replies.** :class:`PacedRequests` (PTB's ``BaseRateLimiter``) records the result
  of every message sent while handling an update (its n-th send); when the update is handled
  again after a crash, a send already delivered returns the recorded message instead of sending
  a second one, so the re-run edits the same placeholder into the answer.
- **Outbound pace** (same class, through a :class:`Pace`): per private chat a burst of 3 then 1
  message per second, per group 20 per minute, 30 per second overall (:class:`LocalPace`:
  ``aiolimiter`` leaky buckets; with ``REDIS_URL`` ``shared_pace.RedisPace`` shares them across
  workers; edits and chat actions count, and a chat action is skipped rather than waited for
  when its chat or the bot is at the limit); a 429 ``retry_after`` delays that chat only.
- **Bounded state.** Per-chat buckets and locks live in ``cachetools`` TTL maps with a size cap:
  a chat quiet for ten minutes is forgotten (its bucket refilled within a minute anyway), and
  at most 10,000 chats are kept (the least recently used go first: forgetting a chat only
  matters within its bucket's period, and 10,000 chats sending within seconds is far beyond
  Telegram's 30 messages a second), so a bot that meets a million chats keeps ~15 MB of them.

PTB offers the extension point; the bookkeeping is ours because it is the point: which update
a send belongs to and whether it already happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiolimiter import AsyncLimiter
from cachetools import TTLCache
from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot.delivery.inbox import DeliveryLedger
from handlers.work import current_work

logger = logging.getLogger(__name__)

SEND_ENDPOINTS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "sendAudio", "sendVoice", "sendMediaGroup"}
)
"""Methods that put a new message in a chat: recorded per update, never repeated on a re-run."""

CHATS_KEPT = 10_000
"""Per-chat entries kept at most (least recently used dropped first): each is ~1.5 KB."""
CHAT_IDLE_SECONDS = 600.0
"""A chat's entry is dropped after this long unused (longer than any bucket's period)."""


def chat_map(maxsize: int = CHATS_KEPT, ttl: float = CHAT_IDLE_SECONDS) -> TTLCache[Any, Any]:
    """A per-chat map bounded in size and idle time."""
    return TTLCache(maxsize=maxsize, ttl=ttl)


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
        self._chats: TTLCache[int | str, _ChatPace] = chat_map()

    @property
    def chats(self) -> int:
        """Chats with a bucket now (bounded)."""
        return len(self._chats)

    def _chat(self, chat_id: int | str) -> _ChatPace:
        chat = self._chats.get(chat_id)
        if chat is None:
            rate, period = self._group if is_group(chat_id) else self._private
            chat = _ChatPace(AsyncLimiter(rate, period))
        self._chats[chat_id] = chat  # set again: the idle time counts from the last use
        return chat

    async def has_capacity(self, chat_id: int | str) -> bool:
        """Both the chat's and the overall bucket have room."""
        return self._overall.has_capacity() and self._chat(chat_id).limiter.has_capacity()

    async def acquire(self, chat_id: int | str) -> None:
        """Wait while the chat is paused, then for its bucket and the overall one."""
        chat = self._chat(chat_id)
        async with chat.paused:
            pass
        await chat.limiter.acquire()
        await self._overall.acquire()

    async def pause(self, chat_id: int | str, seconds: float) -> None:
        """Hold the chat's next messages for ``seconds``."""
        async with self._chat(chat_id).paused:
            await asyncio.sleep(seconds)


@dataclass
class _ChatPace:
    limiter: AsyncLimiter
    paused: asyncio.Lock = field(default_factory=asyncio.Lock)


class PacedRequests(BaseRateLimiter[int]):
    """Outbound pace per chat, per group and overall, and sends recorded per update.

    Args:
        pace: the limits (:class:`LocalPace` in one process, ``RedisPace`` across workers).
        max_retries: retries after a 429 at least (each waits the ``retry_after`` Telegram
            asked for).
        max_wait: beyond ``max_retries``, 429s are waited out until this many seconds were
            spent waiting for one call (a storm of them must not cost an answer).
    """

    def __init__(
        self, pace: Pace | None = None, max_retries: int = 3, max_wait: float = 120.0
    ) -> None:
        self.pace: Pace = pace or LocalPace()
        self._held: TTLCache[int | str, asyncio.Lock] = chat_map()
        self._max_retries = max_retries
        self._max_wait = max_wait
        self.ledger: DeliveryLedger | None = None
        self.fence: Callable[[int], Awaitable[None]] | None = None
        """A queue worker's lease check (raises when the update's stream was taken over):
        called right before each attempt of a call that changes a chat, after any wait."""

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    def _chat_lock(self, chat_id: int | str) -> asyncio.Lock:
        lock = self._held.get(chat_id) or asyncio.Lock()
        self._held[chat_id] = lock  # set again: the idle time counts from the last use
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
        fenced = (
            work is not None
            and self.fence is not None
            and chat_id is not None
            and endpoint != "sendChatAction"
            and not endpoint.startswith("get")
        )
        try:
            result = await self._paced(
                callback,
                args,
                kwargs,
                chat_id,
                rate_limit_args,
                work.update_id if fenced and work is not None else None,
            )
        except BaseException:
            # Only sends that happened count: a re-run's sends line up with the recorded ones
            # only if a failed attempt (a 429 that outlasted the retries) took no number.
            if seq >= 0 and work is not None and work.sends == seq + 1:
                work.sends = seq
            raise
        if fenced and work is not None and endpoint in SEND_ENDPOINTS:
            await self._take_back_if_stale(callback, kwargs, chat_id, work.update_id, result)
        if seq >= 0 and work is not None and self.ledger is not None and isinstance(chat_id, int):
            await self.ledger.record_sent(work.update_id, seq, chat_id, json.dumps(result))
        return result

    async def _take_back_if_stale(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        kwargs: dict[str, Any],
        chat_id: int | str | None,
        update_id: int,
        result: bool | dict[str, Any] | list[dict[str, Any]],
    ) -> None:
        """The lease is checked right before a send, but the process can stall between that
        check and Telegram receiving the send (SIGSTOP, a long pause): the stream may have
        been taken over meanwhile, and the new owner answers the update too. Checked again
        once the send returned; a message sent that late is deleted, and the fence raises."""
        assert self.fence is not None
        try:
            await self.fence(update_id)
        except Exception:
            sent = result if isinstance(result, list) else [result]
            for message in sent:
                if isinstance(message, dict) and "message_id" in message:
                    with contextlib.suppress(TelegramError):
                        await callback(
                            "deleteMessage",
                            {"chat_id": chat_id, "message_id": message["message_id"]},
                            **kwargs,
                        )
            logger.warning(
                "update %s: a send that left after a take-over was taken back", update_id
            )
            raise

    async def _paced(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        chat_id: int | str | None,
        rate_limit_args: int | None,
        fenced_update: int | None = None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        retries = rate_limit_args if rate_limit_args is not None else self._max_retries
        waited = 0.0
        attempt = -1
        while True:
            attempt += 1
            try:
                if chat_id is None:  # getUpdates, getMe, …: not messages, not paced
                    return await callback(*args, **kwargs)
                async with self._chat_lock(chat_id):
                    await self.pace.acquire(chat_id)
                    if fenced_update is not None and self.fence is not None:
                        # After every wait (the pace, a 429's pause, a stall of this
                        # process): a stream taken over meanwhile stops the call here.
                        await self.fence(fenced_update)
                    return await callback(*args, **kwargs)
            except RetryAfter as exc:
                with warnings.catch_warnings():  # PTB 22 warns that the type will change
                    warnings.simplefilter("ignore")
                    pause = exc.retry_after
                seconds = pause if isinstance(pause, int | float) else pause.total_seconds()
                # Telegram's 429 is backpressure, not failure: wait as often as it asks, for
                # up to ``max_wait`` seconds in all (at least ``retries`` times), then give up.
                waited += seconds
                if attempt >= retries and waited > self._max_wait:
                    raise
                logger.info("429 for chat %s: waiting %.1f s (that chat only)", chat_id, seconds)
                if chat_id is None:
                    await asyncio.sleep(seconds + 0.1)
                else:
                    # This chat's other sends wait (here and, through the pace, in every
                    # worker); every other chat goes on.
                    await self.pace.pause(chat_id, seconds + 0.1)
