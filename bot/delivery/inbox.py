"""Every update answered once, in order, across restarts, edits and bursts.

- **Durable intake.** :class:`Intake` writes each update to the store's inbox (sealed with its
  chat's key) before Telegram is told it arrived: in polling mode the next ``getUpdates``
  confirms the offset only after the write; in webhook mode the 200 is sent after it. A
  duplicate ``update_id`` is ignored. At start the updates not marked done are handled again.
  At most ``max_in_hand`` updates are accepted and not yet handled: past that, ``accept``
  waits (polling pauses ``getUpdates``; Telegram keeps the rest) or refuses at once
  (:class:`Saturated`: the webhook answers 429 and Telegram re-delivers), so a flood never
  grows memory.
- **Order.** :class:`ChatOrderedProcessor` (PTB's ``BaseUpdateProcessor``) runs one chat's
  updates one at a time, in arrival order, and different chats in parallel; after a handler
  returns, the update is marked done, unless a handler deferred it (a forwarded message waiting
  in a batch is done when the batch is answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from cachetools import TTLCache
from telegram import Update
from telegram.ext import BaseUpdateProcessor

from handlers.work import UpdateWork, current_work

logger = logging.getLogger(__name__)


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
        # is taken only once it is this update's turn. How many wait is bounded upstream (the
        # intake's ``max_in_hand``, the stream reader's ``max_in_flight``).
        super().__init__(1_000_000)
        self._slots = asyncio.Semaphore(max_concurrent_updates)
        self.ledger: DeliveryLedger | None = None
        self.finished: list[Callable[[list[int]], None]] = []
        """Called with the ids of updates marked done (the intake makes room)."""
        self.handled: Callable[[object, float], None] | None = None
        """Called with each update and the seconds it took (metrics)."""
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
        started = time.monotonic()
        try:
            await coroutine
        finally:
            current_work.reset(token)
            if update_id is not None:
                self._running.discard(update_id)
                if not self._running:
                    self._idle.set()
            if self.handled is not None:
                self.handled(update, time.monotonic() - started)
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
        for callback in self.finished:
            callback(update_ids)


class Saturated(RuntimeError):
    """The bot holds as many unhandled updates as it may: try again later."""


class Intake:
    """Writes updates durably before they are acknowledged, then queues them for handling.

    Args:
        ledger: the store's inbox.
        queue: the application's update queue.
        parse: JSON dict → ``Update`` (bound to the bot).
        max_in_hand: updates accepted and not yet handled, at most (the bound on memory).
    """

    def __init__(
        self,
        ledger: DeliveryLedger,
        queue: asyncio.Queue[object],
        parse: Callable[[dict[str, Any]], Update],
        max_in_hand: int = 2000,
    ) -> None:
        self._ledger = ledger
        self._queue = queue
        self._parse = parse
        self._max_in_hand = max_in_hand
        self._in_hand: set[int] = set()
        self._guests_seen: TTLCache[int, bool] = TTLCache(10_000, 3600)
        self._room = asyncio.Event()
        self._room.set()

    @property
    def in_hand(self) -> int:
        """Updates accepted and not yet handled."""
        return len(self._in_hand)

    def release(self, update_ids: list[int]) -> None:
        """These updates are handled: room for as many new ones."""
        self._in_hand.difference_update(update_ids)
        if len(self._in_hand) < self._max_in_hand:
            self._room.set()

    async def wait_for_room(self) -> None:
        """Wait until fewer than ``max_in_hand`` updates are in hand."""
        await self._room.wait()

    def has_room(self) -> bool:
        """Whether another batch would be taken now."""
        return self._room.is_set()

    async def accept(self, updates: list[Update], wait: bool = True) -> int:
        """Keep these updates and queue the new ones; returns how many were new.

        With ``max_in_hand`` updates in hand it first waits for room, or with ``wait=False``
        raises :class:`Saturated` (nothing kept: the sender delivers them again later).
        """
        if not self._room.is_set():
            if not wait:
                raise Saturated(f"{len(self._in_hand)} updates in hand")
            await self._room.wait()
        # A guest message comes from a chat the bot is not in: it is never written down, only
        # handled (at most once: lost in a crash, it is asked again).
        guests = [u for u in updates if u.guest_message is not None]
        new_guests = [u.update_id for u in guests if u.update_id not in self._guests_seen]
        self._guests_seen.update(dict.fromkeys(new_guests, True))
        rows = [
            (u.update_id, chat_key(u) or 0, json.dumps(u.to_dict(), ensure_ascii=False))
            for u in updates
            if u.guest_message is None
        ]
        new = set(await self._ledger.inbox_add(rows)) if rows else set()
        new.update(new_guests)
        for update in updates:
            if update.update_id in new:
                self._hold(update.update_id)
                await self._queue.put(update)
        return len(new)

    def _hold(self, update_id: int) -> None:
        self._in_hand.add(update_id)
        if len(self._in_hand) >= self._max_in_hand:
            self._room.clear()

    async def replay(self) -> int:
        """Queue every update kept but not handled (after a crash or a restart)."""
        pending = await self._ledger.inbox_pending()
        for update_id, payload in pending:
            self._hold(update_id)
            await self._queue.put(self._parse(json.loads(payload)))
        if pending:
            logger.info("re-handling %d updates not finished before the restart", len(pending))
        return len(pending)
