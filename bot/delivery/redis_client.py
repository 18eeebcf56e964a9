"""The Redis client every process of a scaled-out bot uses (``REDIS_URL``), and what "Redis is
down" raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
"""What an unreachable Redis raises."""
# Release a lock or lease only if ``ARGV[1]`` still holds it (redis-py's ``Lock`` runs the same
# script; leases also need the compare-and-renew below, in ``streams``).
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


async def finish(command: Awaitable[T]) -> T:
    """Await a Redis command that runs to the end even when the caller is cancelled (the caller
    still stops at once). A redis-py command cancelled half-way can leave its connection, and
    whoever waits on it, hanging: a "typing…" task cancelled inside the shared pace held its
    request's answer for good."""
    return await asyncio.shield(asyncio.ensure_future(command))


def connect(url: str, max_connections: int = 64, socket_timeout: float = 30.0) -> aioredis.Redis:
    """A client for ``REDIS_URL`` (bytes in, bytes out) whose pool makes callers wait for a
    free connection rather than fail: hundreds of updates in hand each pace their sends.
    ``socket_timeout`` (``REDIS_SOCKET_TIMEOUT``) bounds every command and the wait for a
    connection."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
    )
    return aioredis.Redis(connection_pool=pool)


def limits_uri(url: str) -> str:
    """``REDIS_URL`` as the ``limits`` library's async storage URI."""
    return url if url.startswith("async+") else "async+" + url
