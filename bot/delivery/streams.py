"""Workers reading the update streams (``REDIS_URL``).

Each stream is owned by one worker at a time (a lease renewed every third of
``WORKER_LEASE_SECONDS``; workers share the streams evenly), so one chat's updates are handled
in order, by one process, and ``/cancel`` reaches the worker that runs the generation. Entries
are read with a consumer group and acknowledged (then deleted) only when handled. When a worker
dies, its lease runs out, another worker takes the stream and claims its unacknowledged entries
(``XAUTOCLAIM``) before reading new ones. A worker whose leases go unconfirmed for two thirds
of their time hands nothing more over (it is fenced locally) until a renewal succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.delivery.inbox import DeliveryLedger
from bot.delivery.queue import QueueNames, QueueSeal
from bot.delivery.redis_client import REDIS_DOWN, RELEASE_SCRIPT
from bot.delivery.supervisor import Supervisor
from services.storage.crypto import SealedDataError

logger = logging.getLogger(__name__)
T = TypeVar("T")

GROUP = "workers"
"""The consumer group every stream is read with."""
READ_BLOCK_MS = 1000
"""A reader's blocking read returns after this long with nothing new (then checks for stop)."""

# Renew a lease only if we still hold it; release only our own.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


# Acknowledge (and delete) entries only while the lease is still ours: a worker that lost its
# partition (a pause longer than the lease) must not acknowledge what the new owner handles.
_FENCED_ACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('XACK', KEYS[2], ARGV[2], unpack(ARGV, 3))
return redis.call('XDEL', KEYS[2], unpack(ARGV, 3))
"""


class StaleLease(RuntimeError):
    """This worker no longer holds the partition of the update it is handling: another worker
    took it over (this one was paused, cut off from Redis, …). Its effects are discarded."""


@dataclass
class _Owned:
    """A partition this worker holds, under the fencing token it was taken with."""

    lease: str = ""
    """The lease's value while ours: ``<worker>#<token>``, the token from ``INCR`` at
    acquisition (monotonic per partition), so an older holder's value never matches."""
    in_flight: set[int] = field(default_factory=set)


class StreamConsumer:
    """The worker side: own a fair share of the partitions, hand their updates to the
    application in order, acknowledge them when handled.

    Args:
        client: Redis.
        names: key names.
        seal: opens queued updates.
        deliver: called with each update (JSON dict), in stream order.
        name: this worker's consumer name (unique per process).
        lease_seconds: a dead worker's partitions are taken over after this long.
        max_in_flight: updates read but not yet handled, at most.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        names: QueueNames,
        seal: QueueSeal,
        deliver: Callable[[dict[str, Any]], Any],
        name: str | None = None,
        lease_seconds: float = 10.0,
        max_in_flight: int = 512,
    ) -> None:
        self._client = client
        self._names = names
        self._seal = seal
        self._deliver = deliver
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self._lease_ms = int(lease_seconds * 1000)
        self._max_in_flight = max_in_flight
        self._owned: dict[int, _Owned] = {}
        self._surplus: list[int] = []
        self._logged: list[int] = []
        self._entries: dict[int, tuple[int, bytes]] = {}  # update id → (partition, entry id)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._fenced_ack = client.register_script(_FENCED_ACK)
        self.discarded = 0
        """Effects refused because the lease had passed to another worker (tests, metrics)."""
        self._supervisor: Supervisor | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = False
        self._renewed_at = time.monotonic()
        """When every lease was last confirmed (monotonic): the reader hands nothing over once
        this is older than :attr:`fence_seconds`."""
        self.fence_seconds = lease_seconds * 2 / 3
        self._reclaim = False
        """Leases unconfirmed this long: stop handing updates over, before they can run out
        (at ``lease_seconds``) and another worker take the partitions."""

    @property
    def partitions(self) -> list[int]:
        """The partitions this worker owns now."""
        return sorted(self._owned)

    @property
    def in_flight(self) -> int:
        """Updates handed over and not yet acknowledged."""
        return len(self._entries)

    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Take a first share of the partitions and start reading (the lease loop and the
        reader run under ``supervisor``: restarted when they die)."""
        await self._balance()
        self._supervisor = supervisor or Supervisor()
        self._supervisor.run(
            "queue-leases", self._lease_loop, stale_after=self._lease_ms / 1000 * 2 / 3
        )
        self._supervisor.run("queue-reader", self._read_loop, stale_after=30.0)

    @property
    def fenced(self) -> bool:
        """Whether the leases went unconfirmed too long to hand anything over."""
        return time.monotonic() - self._renewed_at > self.fence_seconds

    async def pause(self) -> None:
        """Read nothing more (shutting down); leases are still renewed for the work in hand."""
        self._stopping = True

    async def stop(self) -> None:
        """Stop reading; give back the partitions whose updates are all handled (the rest
        are taken over, with their unacknowledged updates, when the lease runs out)."""
        self._stopping = True
        if self._supervisor is not None:
            await self._supervisor.cancel("queue-leases")
            # The reader sees the flag when its blocking read returns (≤ 1 s): cancelling a
            # blocking read inside redis-py can hang until the socket timeout.
            await self._supervisor.finish("queue-reader", READ_BLOCK_MS / 1000 + 1.5)
        with contextlib.suppress(*REDIS_DOWN):
            for partition, owned in list(self._owned.items()):
                if not owned.in_flight:
                    await self._give_back(partition)
            await self._client.zrem(self._names.workers, self.name)

    # ------------------------------------------------------------------ leases

    async def _lease_loop(self) -> None:
        """Renew every third of the lease. A renewal that fails for any reason (Redis down, or
        a bug) is logged and retried; once the leases went unconfirmed for two thirds of their
        time, the reader stops handing updates over (:attr:`fenced`) until a renewal succeeds,
        so this worker never handles a chat another worker may have taken."""
        pause = self._lease_ms / 3000
        while True:
            await asyncio.sleep(pause)
            try:
                await self._balance()
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                logger.warning("Redis unreachable while renewing leases: %s", exc)
            except Exception:
                logger.exception("renewing the leases failed")
            if self.fenced and self._owned:
                logger.warning(
                    "leases unconfirmed for %.1f s: handing nothing over until renewed",
                    time.monotonic() - self._renewed_at,
                )

    async def _balance(self) -> None:
        """Heartbeat, renew what we hold, then take or give back partitions so every live
        worker holds its share."""
        now = time.time()
        workers = self._names.workers
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zadd(workers, {self.name: now})
            pipe.zremrangebyscore(workers, "-inf", now - self._lease_ms / 1000)
            pipe.zcard(workers)
            _, _, live = await pipe.execute()
        share = math.ceil(self._names.partitions / max(1, int(live)))
        for partition, owned in list(self._owned.items()):
            kept = await self._renew(
                keys=[self._names.lease(partition)], args=[owned.lease, self._lease_ms]
            )
            if not kept:
                logger.warning("lost the lease of partition %d", partition)
                self._owned.pop(partition, None)
        # Every lease we still hold was confirmed from ``now`` on (taken ones below, too).
        self._renewed_at = time.monotonic() - (time.time() - now)
        if self._supervisor is not None:
            self._supervisor.beat("queue-leases")
        # More than our share: the reader gives back partitions with nothing in hand, between
        # two reads (one in the middle of an update stays ours, or the chat's next update
        # could overtake it elsewhere; one given back mid-read would strand what was read).
        surplus = len(self._owned) - share
        self._surplus = sorted(self._owned, reverse=True)[: max(0, surplus)]
        self._log_ownership()
        if len(self._owned) >= share:
            return
        start = int(hashlib.sha256(self.name.encode()).hexdigest(), 16)
        for step in range(self._names.partitions):
            partition = (start + step) % self._names.partitions
            if partition in self._owned:
                continue
            if await self._client.exists(self._names.lease(partition)):
                continue
            token = await self._client.incr(self._names.fence(partition))
            lease = f"{self.name}#{token}"
            taken = await self._client.set(
                self._names.lease(partition), lease, nx=True, px=self._lease_ms
            )
            if taken:
                await self._take_over(partition, lease)
                if len(self._owned) >= share:
                    break
        self._log_ownership()

    def _log_ownership(self) -> None:
        owned = sorted(self._owned)
        if owned != self._logged:
            self._logged = owned
            logger.info("worker %s owns partitions %s", self.name, owned)

    async def _give_back(self, partition: int) -> None:
        owned = self._owned.pop(partition, None)
        if owned is not None:
            await self._release(keys=[self._names.lease(partition)], args=[owned.lease])

    async def _give_back_surplus(self) -> None:
        surplus, self._surplus = self._surplus, []
        for partition in surplus:
            owned = self._owned.get(partition)
            if owned is not None and not owned.in_flight:
                await self._give_back(partition)

    async def _take_over(self, partition: int, lease: str | None = None) -> None:
        """Own a partition: create its group if new, then claim (in stream order) what a
        previous owner read but never acknowledged, and hand it over before anything new."""
        stream = self._names.stream(partition)
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self._client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        owned = self._owned.get(partition) or _Owned()  # a re-claim keeps what is in hand
        if lease is not None:
            owned.lease = lease
        claimed: list[tuple[bytes, dict[bytes, bytes]]] = []
        cursor: bytes | str = "0-0"
        while True:
            reply: Any = await self._client.xautoclaim(
                stream, GROUP, self.name, min_idle_time=0, start_id=cursor, count=100
            )
            cursor, entries = reply[0], reply[1]
            claimed.extend(e for e in entries if e[1])
            if cursor in (b"0-0", "0-0"):
                break
        # XAUTOCLAIM walks the whole pending list in ID order, ours included (a restart with
        # the same name), so the claimed entries are already in stream order.
        if claimed:
            logger.info("partition %d: taking over %d unfinished updates", partition, len(claimed))
        for entry_id, fields in claimed:
            self._hand_over(partition, owned, entry_id, fields)
        # Only now may the reader read new entries of it: they come after the claimed ones.
        self._owned[partition] = owned

    # ------------------------------------------------------------------ reading

    async def _read_loop(self) -> None:
        pause = 0.2
        while not self._stopping:
            if self._supervisor is not None:
                self._supervisor.beat("queue-reader")
            if not self._owned or self.fenced:
                self._reclaim = self._reclaim or bool(self._owned)
                await asyncio.sleep(0.2)
                continue
            if self._reclaim:
                # Back from a fence: what was read meanwhile (and not handed over) is pending
                # under our name; claim it, in stream order, before reading anything new.
                self._reclaim = False
                try:
                    for partition in list(self._owned):
                        await self._take_over(partition)
                except REDIS_DOWN as exc:
                    self._reclaim = True
                    logger.warning("Redis unreachable (%s); retrying in %.1f s", exc, pause)
                    await asyncio.sleep(pause)
                    continue
            if not self._room.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), 1.0)
                continue
            try:
                await self._give_back_surplus()
                if not self._owned:
                    continue
                streams: Any = {self._names.stream(p): ">" for p in self._owned}
                reply: Any = await self._client.xreadgroup(
                    GROUP, self.name, streams, count=64, block=READ_BLOCK_MS
                )
            except ResponseError as exc:  # NOGROUP: Redis restarted empty; take them again
                logger.warning("stream read failed (%s); re-creating the groups", exc)
                for partition in list(self._owned):
                    await self._take_over(partition)
                continue
            except REDIS_DOWN as exc:
                logger.warning("Redis unreachable (%s); retrying in %.1f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            pause = 0.2
            if self._stopping:
                # Read after the stop began: not handed over, left pending (not acknowledged)
                # for whoever owns the partition next.
                break
            if self.fenced:
                # The leases lapsed while the read blocked: these stay pending (read, not
                # acknowledged) and are claimed by whoever owns the partition next, or by this
                # worker once its leases are confirmed again.
                self._reclaim = True
                continue
            for stream, entries in reply or []:
                partition = int(stream.rsplit(b":", 1)[-1])
                owned = self._owned.get(partition)
                if owned is None:  # lost its lease meanwhile; the next owner claims these
                    continue
                for entry_id, fields in entries:
                    self._hand_over(partition, owned, entry_id, fields)

    def _hand_over(
        self, partition: int, owned: _Owned, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> None:
        update_id = int(fields[b"id"])
        if update_id in self._entries:
            return  # already in hand
        try:
            data = json.loads(self._seal.open(update_id, fields[b"update"]))
        except (SealedDataError, ValueError, KeyError):
            logger.warning("queued update %s cannot be opened; dropped", update_id)
            asyncio.get_running_loop().create_task(self._ack(partition, [entry_id]))
            return
        self._entries[update_id] = (partition, entry_id)
        owned.in_flight.add(update_id)
        if len(self._entries) >= self._max_in_flight:
            self._room.clear()
        self._deliver(data)

    async def done(self, update_ids: list[int]) -> None:
        """Acknowledge handled updates (and delete them from the stream: nothing kept)."""
        by_partition: dict[int, list[bytes]] = {}
        for update_id in update_ids:
            entry = self._entries.pop(update_id, None)
            if entry is None:
                continue
            partition, entry_id = entry
            by_partition.setdefault(partition, []).append(entry_id)
            owned = self._owned.get(partition)
            if owned is not None:
                owned.in_flight.discard(update_id)
        if len(self._entries) < self._max_in_flight:
            self._room.set()
        for partition, entry_ids in by_partition.items():
            await self._ack(partition, entry_ids)

    async def check_lease(self, update_id: int) -> None:
        """Raise :class:`StaleLease` unless the partition of ``update_id`` is still held under
        the token it was taken with (one Redis read; called before each effect of the
        update: a send, a recorded send)."""
        entry = self._entries.get(update_id)
        if entry is None:
            return  # not from a stream (a hand-over replay in this process)
        owned = self._owned.get(entry[0])
        try:
            current = await self._client.get(self._names.lease(entry[0]))
        except REDIS_DOWN:
            # Redis unreachable (restarting): judge by the last confirmed renewal, as the
            # reader does. Within two thirds of the lease nobody else can have the stream.
            current = owned.lease if owned is not None and not self.fenced else None
        if isinstance(current, bytes):
            current = current.decode()
        if owned is None or current != owned.lease:
            self.discarded += 1
            logger.warning(
                "update %s: partition %d belongs to another worker now; this effect is "
                "discarded (the new owner handles the update)",
                update_id,
                entry[0],
            )
            raise StaleLease(f"partition {entry[0]} was taken over")

    async def _ack(self, partition: int, entry_ids: list[bytes]) -> None:
        stream = self._names.stream(partition)
        owned = self._owned.get(partition)
        if owned is None:
            logger.warning(
                "partition %d was taken over: %d updates left to its new owner",
                partition,
                len(entry_ids),
            )
            return
        for attempt in range(20):
            try:
                acked = await self._fenced_ack(
                    keys=[self._names.lease(partition), stream],
                    args=[owned.lease, GROUP, *entry_ids],
                )
                if acked == -1:
                    self.discarded += 1
                    logger.warning(
                        "partition %d was taken over: %d updates left to its new owner",
                        partition,
                        len(entry_ids),
                    )
                return
            except REDIS_DOWN as exc:
                if self._stopping or attempt == 19:
                    # Not acknowledged: handled again by whoever claims it; the recorded
                    # sends make that re-run send nothing twice.
                    logger.warning("could not acknowledge %d updates: %s", len(entry_ids), exc)
                    return
                await asyncio.sleep(0.5)


class QueueLedger:
    """The delivery ledger of a worker: handled updates are acknowledged on the stream; what
    was sent per update is recorded in the (shared) store."""

    def __init__(self, store: DeliveryLedger, consumer: StreamConsumer) -> None:
        self._store = store
        self._consumer = consumer

    async def inbox_add(self, updates: list[tuple[int, int, str]]) -> list[int]:
        """Not used by workers (the ingress queues updates)."""
        return await self._store.inbox_add(updates)

    async def inbox_pending(self) -> list[tuple[int, str]]:
        """Not used by workers (the stream keeps what is pending)."""
        return await self._store.inbox_pending()

    async def inbox_done(self, update_ids: list[int]) -> None:
        """Acknowledge on the stream."""
        await self._consumer.done(update_ids)

    async def sent_result(self, update_id: int, seq: int) -> str | None:
        """From the store. (The fence is checked by the pacing layer right before each call:
        ``PacedRequests.fence``.)"""
        return await self._store.sent_result(update_id, seq)

    async def record_sent(self, update_id: int, seq: int, chat_id: int, result: str) -> None:
        """In the store."""
        await self._store.record_sent(update_id, seq, chat_id, result)
