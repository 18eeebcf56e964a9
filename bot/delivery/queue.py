"""The update queue (``REDIS_URL``): the ingress writes each update to one of
``QUEUE_PARTITIONS`` Redis Streams, chosen by chat id, before Telegram is told it arrived; a Lua
script checks the update id and appends in one step, so a duplicate delivery is dropped.
Payloads are sealed (AES-GCM, a key derived from the storage master key).

redis-py's own stream commands are the engine: arq and taskiq are job queues that run jobs in
any order on any worker, and per-chat order is the guarantee we keep.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from telegram import Update

from bot.delivery.inbox import chat_key
from bot.delivery.redis_client import REDIS_DOWN
from services.storage.crypto import NONCE_BYTES, MasterKey, SealedDataError

logger = logging.getLogger(__name__)
T = TypeVar("T")

SEEN_SECONDS = 86_400
"""Update ids are remembered this long for dedupe (Telegram re-delivers within hours)."""

# Append an update unless its id was seen: one atomic step, so a crash between the check and
# the append cannot lose an update or let a duplicate through.
_ADD_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'update', ARGV[2], 'id', ARGV[3])
  return 1
end
return 0
"""


class QueueUnavailable(ConnectionError):
    """Redis could not take the updates: they are not acknowledged to Telegram."""


class KeyMismatch(RuntimeError):
    """This process's master key is not the one the other processes of the bot use."""


async def check_key(client: aioredis.Redis, prefix: str, master: MasterKey) -> None:
    """Every process of the bot must seal and open queued updates with one key: the first
    records its key's check value, the others compare (``KeyMismatch`` when different)."""
    name = f"{prefix}:key-check"
    await client.set(name, master.check_value(), nx=True)
    stored: Any = await client.get(name)
    if stored is None or not master.matches(bytes(stored)):
        raise KeyMismatch(
            "this process's storage key differs from the one the bot's other processes use: "
            "give every ingress and worker the same STORAGE_KEY"
        )


class QueueSeal:
    """Seals queued updates: Redis holds them in memory (and in its AOF, if enabled) sealed."""

    def __init__(self, master: MasterKey) -> None:
        self._aead = AESGCM(master.derive(b"condensa update queue v1"))

    def seal(self, update_id: int, payload: str) -> bytes:
        """The payload sealed, bound to its update id."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, payload.encode(), b"update:%d" % update_id)

    def open(self, update_id: int, sealed: bytes) -> str:
        """The payload; ``SealedDataError`` when it was altered or moved."""
        try:
            plain = self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], b"update:%d" % update_id
            )
        except Exception as exc:  # InvalidTag
            raise SealedDataError("queued update failed authentication") from exc
        return plain.decode()


@dataclass(frozen=True)
class QueueNames:
    """Redis key names under one prefix."""

    prefix: str
    partitions: int

    def stream(self, partition: int) -> str:
        """The stream of a partition."""
        return f"{self.prefix}:updates:{partition}"

    def partition(self, chat_id: int) -> int:
        """The partition of a chat (all of a chat's updates go to one stream)."""
        return chat_id % self.partitions

    def seen(self, update_id: int) -> str:
        """The dedupe key of an update id."""
        return f"{self.prefix}:seen:{update_id}"

    def fence(self, partition: int) -> str:
        """The counter a partition's fencing tokens come from (``INCR`` at each acquisition)."""
        return f"{self.prefix}:fence:{partition}"

    def lease(self, partition: int) -> str:
        """Who owns a partition."""
        return f"{self.prefix}:lease:{partition}"

    @property
    def workers(self) -> str:
        """Live workers (a sorted set of heartbeats)."""
        return f"{self.prefix}:workers"


class UpdateQueue:
    """The ingress side: append updates to their chat's stream, once per update id."""

    def __init__(self, client: aioredis.Redis, names: QueueNames, seal: QueueSeal) -> None:
        self._client = client
        self._names = names
        self._seal = seal
        self._add = client.register_script(_ADD_ONCE)

    async def accept(self, updates: list[Update]) -> int:
        """Queue the updates not seen before; returns how many were new. Raises when Redis
        is unreachable, so the caller does not acknowledge them to Telegram."""
        new = 0
        try:
            for update in updates:
                payload = json.dumps(update.to_dict(), ensure_ascii=False)
                partition = self._names.partition(chat_key(update) or 0)
                sealed = self._seal.seal(update.update_id, payload)
                added = await self._add(
                    keys=[self._names.seen(update.update_id), self._names.stream(partition)],
                    args=[SEEN_SECONDS, sealed, update.update_id],
                )
                new += int(added)
        except REDIS_DOWN as exc:
            raise QueueUnavailable(f"Redis is unreachable: {exc}") from exc
        return new
