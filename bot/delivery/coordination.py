"""Coordination across workers (``REDIS_URL``): a scheduled digest or purge fires once
(``SET NX`` per firing), one digest per group at a time (a lock with a token), and marks of what
was done (a day's digest sent)."""

from __future__ import annotations

import logging
import os
from typing import TypeVar

import redis.asyncio as aioredis

from bot.delivery.redis_client import RELEASE_SCRIPT, finish

logger = logging.getLogger(__name__)
T = TypeVar("T")


class RedisCoordination:
    """Once-only firings and locks across workers (``SET NX`` with an expiry)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._release = client.register_script(RELEASE_SCRIPT)

    async def once(self, name: str, seconds: float) -> bool:
        """True for the first caller of ``name`` within ``seconds``."""
        return bool(
            await finish(
                self._client.set(
                    f"{self._prefix}:once:{name}", "1", nx=True, px=int(seconds * 1000)
                )
            )
        )

    async def hold(self, name: str, seconds: float) -> str | None:
        """Take the lock ``name`` for at most ``seconds``."""
        token = os.urandom(8).hex()
        taken = await finish(
            self._client.set(f"{self._prefix}:lock:{name}", token, nx=True, px=int(seconds * 1000))
        )
        return token if taken else None

    async def release(self, name: str, token: str) -> None:
        """Give the lock back if ``token`` still holds it."""
        await finish(self._release(keys=[f"{self._prefix}:lock:{name}"], args=[token]))

    async def seen(self, name: str) -> bool:
        """Whether ``name`` was marked (by any worker) and has not expired."""
        return bool(await finish(self._client.exists(f"{self._prefix}:mark:{name}")))

    async def mark(self, name: str, seconds: float) -> None:
        """Mark ``name`` for ``seconds``, for every worker."""
        await finish(self._client.set(f"{self._prefix}:mark:{name}", "1", px=int(seconds * 1000)))
