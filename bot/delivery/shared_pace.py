"""The outbound pace shared by every worker (``REDIS_URL``): the ``limits`` library's moving
windows in Redis, and a 429's pause for a chat; locally paced while Redis is unreachable."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypeVar

import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from bot.delivery.pacing import LocalPace, is_group
from bot.delivery.redis_client import REDIS_DOWN, finish, limits_uri

logger = logging.getLogger(__name__)
T = TypeVar("T")


class RedisPace:
    """The outbound pace shared by every worker (``limits`` moving windows in Redis).

    Args:
        url: ``REDIS_URL``.
        prefix: key prefix.
        private: (messages, seconds) per private chat.
        group: (messages, seconds) per group.
        overall: messages per second across the bot.
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        client: aioredis.Redis,
        private: tuple[int, int] = (3, 3),
        group: tuple[int, int] = (20, 60),
        overall: int = 30,
    ) -> None:
        storage = RedisStorage(
            limits_uri(url),
            implementation="redispy",
            key_prefix=prefix,
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
        self._limiter = MovingWindowRateLimiter(storage)
        # While Redis is unreachable, each worker paces alone: answers still go out.
        self._fallback = LocalPace(*private, *group, overall_rate=overall)
        self._overall_turn = asyncio.Lock()
        self._warned = False
        self._private = RateLimitItemPerSecond(*private)
        self._group = RateLimitItemPerSecond(*group)
        self._overall = RateLimitItemPerSecond(overall)
        self._client = client
        self._prefix = prefix

    def _item(self, chat_id: int | str) -> Any:
        return self._group if is_group(chat_id) else self._private

    def _degraded(self, error: BaseException) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("Redis unreachable for the shared pace (%s): pacing locally", error)

    async def has_capacity(self, chat_id: int | str) -> bool:
        """Both windows have room now."""
        try:
            return await finish(self._limiter.test(self._overall, "all")) and await finish(
                self._limiter.test(self._item(chat_id), str(chat_id))
            )
        except REDIS_DOWN as exc:
            self._degraded(exc)
            return await self._fallback.has_capacity(chat_id)

    async def _wait_for(self, item: Any, key: str) -> None:
        stats = await finish(self._limiter.get_window_stats(item, key))
        await asyncio.sleep(min(5.0, max(0.02, stats.reset_time - time.time())))

    async def acquire(self, chat_id: int | str) -> None:
        """Wait out a 429 pause, then take a slot of the chat's window and of the overall one."""
        try:
            await self._acquire(chat_id)
            self._warned = False
        except REDIS_DOWN as exc:
            self._degraded(exc)
            await self._fallback.acquire(chat_id)

    async def _acquire(self, chat_id: int | str) -> None:
        item, key = self._item(chat_id), str(chat_id)
        while True:
            paused = await finish(self._client.pttl(f"{self._prefix}:paused:{chat_id}"))
            if paused > 0:
                await asyncio.sleep(paused / 1000)
                continue
            if not await finish(self._limiter.test(item, key)):
                await self._wait_for(item, key)
                continue
            # One waiter per process asks Redis for an overall slot; the others queue here in
            # order (200 sends in hand polling Redis together cost ~270 commands per update).
            async with self._overall_turn:
                while not await finish(self._limiter.hit(self._overall, "all")):
                    await self._wait_for(self._overall, "all")
            if await finish(self._limiter.hit(item, key)):
                return
            # Another worker took the chat's last slot meanwhile (our overall slot is spent:
            # the bot goes a little slower, never faster).

    async def pause(self, chat_id: int | str, seconds: float) -> None:
        """Hold the chat's messages, in every worker, for ``seconds``."""
        try:
            await finish(
                self._client.set(
                    f"{self._prefix}:paused:{chat_id}", "1", px=max(1, int(seconds * 1000))
                )
            )
        except REDIS_DOWN as exc:
            self._degraded(exc)
            await self._fallback.pause(chat_id, seconds)
            return
        await asyncio.sleep(seconds)
