"""Several processes, one bot: the Redis queue, workers taking over, shared limits, and the
faults that break them on purpose (kill -9 a worker, restart Redis, restart PostgreSQL).

Real Redis and PostgreSQL (the local servers; a throwaway database and key prefix per test),
real ``python -m bot ingress`` / ``worker`` processes against the Bot API emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from telegram import Update

from bot.delivery.coordination import RedisCoordination
from bot.delivery.pacing import PacedRequests
from bot.delivery.queue import QueueNames, QueueSeal, QueueUnavailable, UpdateQueue
from bot.delivery.redis_client import connect
from bot.delivery.shared_pace import RedisPace
from bot.delivery.streams import StaleLease, StreamConsumer
from handlers.deps import LocalCoordination
from handlers.work import UpdateWork, current_work
from playground.api import BotAPIEmulator
from services.storage.crypto import MasterKey, encode_key, new_key
from services.storage.postgres import PostgresStore
from tests.conftest import ENGLISH_ARTICLE, long_article
from tests.test_delivery import bot_env

REPO = Path(__file__).resolve().parents[1]
KEY = new_key()


def update(update_id: int, chat_id: int, text: str) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": {"id": abs(chat_id), "is_bot": False, "first_name": "U"},
                "text": text,
            },
        },
        None,
    )


class Collector:
    """Stands in for the application: records what a consumer hands over."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def __call__(self, data: dict[str, Any]) -> None:
        self.seen.append((data["update_id"], data["message"]["text"]))


async def wait_for(predicate: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def two_workers(
    client: aioredis.Redis, redis_url: tuple[str, str], partitions: int
) -> tuple[
    QueueNames, UpdateQueue, tuple[StreamConsumer, Collector], tuple[StreamConsumer, Collector]
]:
    """A queue of ``partitions`` streams and two consumers of it ("one", "two"; 1.5 s leases),
    each with the collector of what it was handed; neither started."""
    names = QueueNames(redis_url[1], partitions)
    seal = QueueSeal(MasterKey(KEY))
    first, second = Collector(), Collector()
    one = StreamConsumer(client, names, seal, first, name="one", lease_seconds=1.5)
    two = StreamConsumer(client, names, seal, second, name="two", lease_seconds=1.5)
    return names, UpdateQueue(client, names, seal), (one, first), (two, second)


@pytest.fixture
async def redis_client(redis_url: tuple[str, str]) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url[0])
    yield client
    await client.aclose()


async def test_the_queue_keeps_one_copy_per_update_sealed_and_in_chat_order(
    redis_url: tuple[str, str], redis_client: aioredis.Redis
) -> None:
    names = QueueNames(redis_url[1], 4)
    seal = QueueSeal(MasterKey(KEY))
    queue = UpdateQueue(redis_client, names, seal)
    batch = [update(i, 1000 + i % 3, f"secret text {i}") for i in range(1, 31)]
    assert await queue.accept(batch) == 30
    assert await queue.accept(batch[:10]) == 0  # Telegram delivered them again
    raw = b""
    for partition in range(4):
        for _, fields in await redis_client.xrange(names.stream(partition)):
            raw += b"".join(fields.values())
    assert raw
    assert b"secret text" not in raw, "queued updates are sealed"
    got = Collector()
    consumer = StreamConsumer(redis_client, names, seal, got, name="w1", lease_seconds=2)
    await consumer.start()
    try:
        await wait_for(lambda: len(got.seen) == 30)
        for chat in (1000, 1001, 1002):
            ids = [u for u, _ in got.seen if 1000 + u % 3 == chat]
            assert ids == sorted(ids), "one chat's updates in the order they came"
        assert consumer.partitions == [0, 1, 2, 3]
        await consumer.done([u for u, _ in got.seen])
        lengths = [await redis_client.xlen(names.stream(p)) for p in range(4)]
        assert lengths == [0, 0, 0, 0], "handled updates are deleted from Redis"
    finally:
        await consumer.stop()


async def test_workers_share_the_streams_and_a_dead_workers_updates_are_taken_over(
    redis_url: tuple[str, str], redis_client: aioredis.Redis
) -> None:
    names, queue, (one, first), (two, second) = two_workers(redis_client, redis_url, 8)
    await one.start()
    await two.start()
    try:
        await wait_for(lambda: len(one.partitions) == 4 and len(two.partitions) == 4, 10)
        assert set(one.partitions).isdisjoint(two.partitions)
        await queue.accept([update(i, 2000 + i, f"u{i}") for i in range(1, 17)])
        await wait_for(lambda: len(first.seen) + len(second.seen) == 16)
        # "one" dies holding its updates, never acknowledged: no release, no goodbye.
        assert one._supervisor is not None  # noqa: SLF001 - the crash being simulated
        for task in one._supervisor._tasks.values():  # noqa: SLF001
            task.cancel()
        held = sorted(u for u, _ in first.seen)
        assert held
        await wait_for(lambda: len(two.partitions) == 8, 15)
        await wait_for(lambda: sorted(u for u, _ in second.seen if u in held) == held, 10)
        await two.done([u for u, _ in second.seen])
        assert two.in_flight == 0
    finally:
        await two.stop()


async def test_a_lease_loop_that_raises_fences_the_worker_before_its_lease_runs_out(
    redis_url: tuple[str, str], redis_client: aioredis.Redis
) -> None:
    """Renewal breaks with an unexpected error (not Redis being down): the worker stops
    handing updates over before its leases can run out, so the worker that takes the
    partitions over is the only one to see what arrives next; /healthz would say so."""
    names, queue, (one, first), (two, second) = two_workers(redis_client, redis_url, 4)
    await one.start()
    try:
        await queue.accept([update(1, 3001, "before")])
        await wait_for(lambda: first.seen == [(1, "before")])
        await one.done([1])

        async def broken() -> None:
            raise RuntimeError("a bug in the balancing code")

        one._balance = broken  # type: ignore[method-assign]  # noqa: SLF001
        await wait_for(lambda: one.fenced, 5)
        assert one.fence_seconds < 1.5, "fenced before the lease can expire"
        assert one._supervisor is not None and not one._supervisor.healthy()  # noqa: SLF001
        await queue.accept([update(i, 3000 + i, f"after {i}") for i in range(2, 10)])
        await two.start()
        await wait_for(lambda: len(second.seen) == 8, 15)
        assert sorted(u for u, _ in second.seen) == list(range(2, 10))
        assert first.seen == [(1, "before")], "the fenced worker handed nothing over"
        await two.done([u for u, _ in second.seen])
        del one._balance  # noqa: SLF001 - renewal works again: it finds its leases gone
        await wait_for(lambda: len(one.partitions) == 2 and len(two.partitions) == 2, 15)
        assert first.seen == [(1, "before")]
    finally:
        await two.stop()
        await one.stop()


async def test_a_worker_that_lost_its_lease_mid_update_sends_and_acknowledges_nothing(
    redis_url: tuple[str, str], redis_client: aioredis.Redis
) -> None:
    """Fencing: "one" holds an update when it stalls past its lease (a long GC pause, a
    partition from Redis); "two" takes the partition over with a newer token and the update
    with it. When "one" wakes up and goes on with the update, its send and its acknowledgement
    are refused; only "two"'s count."""
    names, queue, (one, first), (two, second) = two_workers(redis_client, redis_url, 2)

    await one.start()
    try:
        await queue.accept([update(1, 4001, "summarize this")])
        await wait_for(lambda: first.seen == [(1, "summarize this")])
        await one.check_lease(1)  # ours
        assert one._supervisor is not None  # noqa: SLF001 - the stall being simulated
        await one._supervisor.cancel("queue-leases")  # noqa: SLF001 - no renewals: "paused"
        await two.start()
        await wait_for(lambda: len(two.partitions) == 2, 15)
        await wait_for(lambda: second.seen == [(1, "summarize this")], 10)
        tokens = [await redis_client.get(names.fence(p)) for p in range(2)]
        assert all(int(t) >= 2 for t in tokens), "a newer token at each take-over"
        # "one" wakes up and carries on with the update it holds: its next call to Telegram
        # stops at the fence, in the pacing layer, before anything is sent.
        pacer = PacedRequests()
        pacer.fence = one.check_lease
        sent: list[str] = []

        async def send_message(*args: Any, **kwargs: Any) -> dict[str, Any]:
            sent.append("sendMessage")
            return {"message_id": 9}

        token = current_work.set(UpdateWork(1))
        try:
            with pytest.raises(StaleLease):
                await pacer.process_request(
                    send_message, (), {}, "sendMessage", {"chat_id": 4001}, None
                )
        finally:
            current_work.reset(token)
        assert sent == [], "nothing reached Telegram"
        await one.done([1])
        partition = names.partition(4001)
        pending = await redis_client.xpending(names.stream(partition), "workers")
        assert pending["pending"] == 1 and pending["consumers"][0]["name"] == b"two"
        assert one.discarded == 2
        await two.done([1])
        assert await redis_client.xlen(names.stream(partition)) == 0
    finally:
        await two.stop()
        await one.stop()


async def test_shared_pace_holds_across_workers_and_a_429_pauses_the_chat(
    redis_url: tuple[str, str], redis_client: aioredis.Redis
) -> None:
    url, prefix = redis_url
    paces = [RedisPace(url, prefix + ":pace", redis_client) for _ in range(3)]
    stamps: list[float] = []

    async def send(pace: RedisPace) -> None:
        for _ in range(3):
            await pace.acquire(77)
            stamps.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(send(pace) for pace in paces))  # 9 messages to one private chat
    stamps.sort()
    # 3 per 3 seconds per private chat, whichever worker sends: 9 messages take ≥ 6 s.
    assert stamps[-1] - started >= 5.5
    for i in range(len(stamps)):
        window = [s for s in stamps if stamps[i] <= s < stamps[i] + 2.9]
        assert len(window) <= 3
    assert await paces[0].has_capacity(-100500)  # another chat is not held up
    # Worker 0 is told 429 for the group: worker 1's next send to it waits out the pause.
    pausing = asyncio.create_task(paces[0].pause(-100500, 1.0))
    before = time.monotonic()
    await wait_until_paused(redis_client, f"{prefix}:pace:paused:-100500")
    await paces[1].acquire(-100500)
    waited = time.monotonic() - before
    assert 0.8 <= waited < 1.0 + 0.5, f"waited {waited:.2f} s for a 1 s pause"
    await pausing


async def wait_until_paused(client: aioredis.Redis, key: str) -> None:
    """The pause is recorded in Redis (one round trip after it was asked for)."""
    deadline = time.monotonic() + 5
    while not await client.exists(key):
        assert time.monotonic() < deadline, "the pause never reached Redis"
        await asyncio.sleep(0.01)


async def test_hundreds_of_sends_in_hand_wait_for_a_connection_and_a_dead_redis_paces_locally(
    redis_url: tuple[str, str],
) -> None:
    client = connect(redis_url[0], max_connections=8)
    pace = RedisPace(redis_url[0], redis_url[1] + ":pace", client, overall=1000)
    try:
        # 300 chats at once through 8 connections: they wait for one, none fails.
        await asyncio.gather(*(pace.acquire(5000 + i) for i in range(300)))
        assert all(await asyncio.gather(*(pace.has_capacity(9000 + i) for i in range(300))))
    finally:
        await client.aclose()
    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    dead = connect(dead_url)
    alone = RedisPace(dead_url, "x:pace", dead)
    try:
        started = time.monotonic()
        for _ in range(3):
            await alone.acquire(77)  # answers still go out, paced by this process
        assert time.monotonic() - started < 5
        assert await alone.has_capacity(78)
    finally:
        await dead.aclose()


async def test_a_send_cancelled_inside_the_shared_pace_stops_at_once(
    redis_url: tuple[str, str],
) -> None:
    """A "typing…" task is cancelled when the answer is ready, often while it waits on Redis.
    A redis-py command cancelled half-way left its caller hanging (and the answer with it)."""
    import random

    client = connect(redis_url[0], max_connections=8)
    pace = RedisPace(redis_url[0], redis_url[1] + ":pace", client, overall=100_000)

    async def sends(chat: int) -> None:
        while True:
            await pace.has_capacity(chat)
            await pace.acquire(10_000 + chat % 50)

    rng = random.Random(7)
    tasks = [asyncio.create_task(sends(i)) for i in range(200)]
    try:
        for round_number in range(15):
            await asyncio.sleep(rng.random() * 0.05)
            victims = rng.sample(tasks, 20)
            for task in victims:
                task.cancel()
            _, pending = await asyncio.wait(victims, timeout=5)
            assert not pending, f"round {round_number}: cancelled sends still running"
            tasks = [t for t in tasks if t not in victims]
            tasks += [asyncio.create_task(sends(1000 + round_number * 20 + k)) for k in range(20)]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=5)
        await client.aclose()


async def test_scheduled_jobs_fire_once_and_digests_lock_per_group(
    redis_url: tuple[str, str], redis_client: aioredis.Redis
) -> None:
    local = LocalCoordination()
    fired = await asyncio.gather(*(local.once("purge", 60) for _ in range(5)))
    assert sorted(fired) == [False] * 4 + [True]
    workers = [RedisCoordination(redis_client, redis_url[1]) for _ in range(4)]
    fired = await asyncio.gather(
        *(worker.once("scheduled:-5:2026-12-01", 60) for worker in workers for _ in range(3))
    )
    assert sorted(fired) == [False] * 11 + [True], "one firing across four workers"
    one = RedisCoordination(redis_client, redis_url[1])
    two = RedisCoordination(redis_client, redis_url[1])
    assert not await two.once("scheduled:-5:2026-12-01", 60), "fired once across workers"
    token = await one.hold("digest:-5", 60)
    assert token is not None and await two.hold("digest:-5", 60) is None
    await two.release("digest:-5", "not the holder")
    assert await two.hold("digest:-5", 60) is None
    await one.release("digest:-5", token)
    assert await two.hold("digest:-5", 60) is not None


# ---------------------------------------------------------------------- Redis restarts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A private redis-server this test may restart (the shared one stays up)."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(  # noqa: S603 - our own arguments
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
            + list(self.options),
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
            self.process = None


@pytest.mark.parametrize(
    ("options", "kept"),
    [
        (("--save", "", "--appendonly", "no"), False),  # as the shared server: nothing on disk
        (("--save", "", "--appendonly", "yes", "--appendfsync", "always"), True),  # production
    ],
    ids=["no-persistence", "aof-always"],
)
async def test_what_a_redis_restart_keeps(
    tmp_path: Path, options: tuple[str, ...], kept: bool
) -> None:
    server = RedisServer(tmp_path, *options)
    server.start()
    try:
        names = QueueNames("condensa", 4)
        seal = QueueSeal(MasterKey(KEY))
        client = aioredis.from_url(server.url)
        queue = UpdateQueue(client, names, seal)
        assert await queue.accept([update(i, 3000 + i, f"u{i}") for i in range(1, 6)]) == 5
        server.stop()  # queued, acknowledged to Telegram, not yet handled
        with pytest.raises(QueueUnavailable):
            await queue.accept([update(6, 3006, "while Redis is down")])  # not acknowledged
        server.start()
        got = Collector()
        consumer = StreamConsumer(client, names, seal, got, name="after", lease_seconds=2)
        await consumer.start()
        try:
            if kept:
                await wait_for(lambda: len(got.seen) == 5)
                assert sorted(u for u, _ in got.seen) == [1, 2, 3, 4, 5]
            else:
                await asyncio.sleep(1.5)
                assert got.seen == [], "without AOF the queued updates are gone"
            # The update Redis refused is offered again by Telegram and queued now.
            assert await queue.accept([update(6, 3006, "again")]) == 1
            await wait_for(lambda: 6 in {u for u, _ in got.seen})
        finally:
            await consumer.stop()
            await client.aclose()
    finally:
        server.stop()


# ---------------------------------------------------------------------- PostgreSQL restart


def restart_postgres(admin_dsn: str) -> bool:
    """Restart the local PostgreSQL (``pg_ctlcluster``, as root); True when it was restarted.

    Where this user may not restart it, every client connection is terminated instead (what a
    restart does to the workers' connections) and a warning says the weaker fault was used.
    """
    clusters = (
        sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").exists() else []
    )
    why = "no pg_ctlcluster here"
    if clusters and shutil.which("pg_ctlcluster") is not None:
        version = clusters[-1].parent.name
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                version,
                "main",
                "restart",
                "-m",
                "fast",
            ],
            check=False,
            capture_output=True,
            timeout=120,
        )
        if done.returncode == 0:
            return True
        why = done.stderr.decode(errors="replace").strip()
    warnings.warn(
        f"could not restart PostgreSQL ({why}): terminating its client connections instead",
        stacklevel=2,
    )
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            "psql",
            admin_dsn,
            "-c",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return False


async def test_a_postgres_restart_is_ridden_out(postgres_dsn: str, postgres_server: str) -> None:
    store = await PostgresStore.open(postgres_dsn, storage_key=encode_key(KEY))
    try:
        await store.set_digest_enabled(-77, True)
        await asyncio.to_thread(restart_postgres, postgres_server)
        # The pooled connection died with the server: the next operation reconnects.
        assert (await store.digest_settings(-77)).enabled
        await store.set_schedule(-77, "08:00", "UTC")
        assert [s.chat_id for s in await store.scheduled_chats()] == [-77]
    finally:
        await store.close()


async def test_a_stuck_statement_or_an_exhausted_pool_fails_in_time_instead_of_stalling(
    postgres_dsn: str,
) -> None:
    store = await PostgresStore.open(
        postgres_dsn,
        storage_key=encode_key(KEY),
        pool_size=1,
        command_seconds=1.0,
        acquire_seconds=0.5,
    )
    try:

        async def stuck(tx: Any) -> Any:
            return await tx.fetch("SELECT pg_sleep(30)")

        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await store.db.run(stuck)
        assert time.monotonic() - started < 5, "DATABASE_COMMAND_TIMEOUT"

        held = asyncio.Event()
        release = asyncio.Event()

        async def hold(tx: Any) -> None:
            held.set()
            await release.wait()

        holder = asyncio.create_task(store.db.run(hold))
        await held.wait()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await store.digest_settings(-5)  # the only connection is taken
        assert time.monotonic() - started < 3, "DATABASE_ACQUIRE_TIMEOUT"
        release.set()
        await holder
        assert not (await store.digest_settings(-5)).enabled, "usable again"
    finally:
        await store.close()


# ---------------------------------------------------------------------- real processes


def cluster_env(
    emulator: BotAPIEmulator, data: Path, redis_url: tuple[str, str], dsn: str, **extra: str
) -> dict[str, str]:
    values = {
        "REDIS_URL": redis_url[0],
        "REDIS_PREFIX": redis_url[1],
        "DATABASE_URL": dsn,
        "STORAGE_KEY": encode_key(KEY),
        "WORKER_LEASE_SECONDS": "2",
        "QUEUE_PARTITIONS": "8",
        "DEFAULT_METHOD": "lexrank",
    }
    values.update(extra)
    return bot_env(emulator, data, **values)


class Process:
    """``python -m bot ROLE`` with its log in a file."""

    def __init__(self, role: str, env: dict[str, str], log: Path) -> None:
        self.role = role
        self.log = log
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bot", *([role] if role else [])],
            env=env,
            cwd=log.parent,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self, marker: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while marker not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.role} did not start:\n{self.text()[-3000:]}")
            await asyncio.sleep(0.1)

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(60)


@pytest.fixture
async def cluster(
    emulator: BotAPIEmulator,
    tmp_path: Path,
    redis_url: tuple[str, str],
    postgres_dsn: str,
) -> AsyncIterator[Any]:
    started: list[Process] = []

    def launch(role: str, name: str, **extra: str) -> Process:
        env = cluster_env(emulator, tmp_path / "data", redis_url, postgres_dsn, **extra)
        process = Process(role, env, tmp_path / f"{name}.log")
        started.append(process)
        return process

    yield launch
    for process in started:
        process.stop()


async def drained(
    emulator: BotAPIEmulator, redis_url: tuple[str, str], polled: bool = True
) -> None:
    """Every update sent so far was taken by the ingress (it confirmed an offset past the
    newest; a webhook's 200 came after the write) and handled by a worker (its stream entry is
    acknowledged and deleted only then): no reply to them is still coming."""
    newest = emulator.last_update_id
    names = QueueNames(redis_url[1], 8)
    client = aioredis.from_url(redis_url[0])
    deadline = time.monotonic() + 60
    try:
        while True:
            taken = not polled or any(
                int(c.params.get("offset") or 0) > newest
                for c in emulator.calls
                if c.method == "getUpdates"
            )
            lengths = [await client.xlen(names.stream(p)) for p in range(8)]
            if taken and not any(lengths):
                return
            assert time.monotonic() < deadline, f"not drained: {lengths}"
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()


def owned_partitions(log: str) -> list[int]:
    """The partitions a worker's log says it owns last."""
    lines = [line for line in log.splitlines() if "owns partitions" in line]
    return json.loads(lines[-1].rsplit("owns partitions ", 1)[1]) if lines else []


def replies(emulator: BotAPIEmulator, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in emulator.bot_messages(chat_id) if not m["text"].startswith("⏳")]


async def test_ingress_and_two_workers_answer_every_chat_once(
    emulator: BotAPIEmulator, cluster: Any, redis_url: tuple[str, str]
) -> None:
    workers = [cluster("worker", f"worker{i}") for i in range(2)]
    for worker in workers:
        await worker.ready("handling queued updates")
    ingress = cluster("ingress", "ingress")
    await asyncio.wait_for(emulator.polling_started.wait(), 60)
    chats = []
    for i in range(12):
        user = emulator.add_user(500 + i, f"User{i}", "en")
        chat = emulator.private_chat(user)
        chats.append(chat)
        await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    await emulator.wait_until(lambda: all(replies(emulator, c["id"]) for c in chats), timeout=90)
    await drained(emulator, redis_url)
    for chat in chats:
        assert len(emulator.bot_messages(chat["id"])) == 1
    # The two workers split the 8 streams; the 12 chats fell on both.
    owned = [owned_partitions(worker.text()) for worker in workers]
    assert sorted(owned[0] + owned[1]) == list(range(8)) and all(owned)
    used = {chat["id"] % 8 for chat in chats}
    assert used & set(owned[0]) and used & set(owned[1])
    assert "ingress: queueing updates" in ingress.text()


async def test_a_worker_killed_mid_job_is_replaced_and_the_chat_answered_once(
    emulator: BotAPIEmulator, cluster: Any, redis_url: tuple[str, str]
) -> None:
    first = cluster("worker", "first", DEFAULT_METHOD="embedding")
    await first.ready("handling queued updates")
    cluster("ingress", "ingress")
    await asyncio.wait_for(emulator.polling_started.wait(), 60)
    user = emulator.add_user(41, "Finn", "en")
    chat = emulator.private_chat(user)
    long_text = long_article(30)  # seconds of MiniLM work
    await emulator.send_text(chat, user, "/summary " + long_text)
    await emulator.wait_until(
        lambda: [m for m in emulator.bot_messages(chat["id"]) if m["text"].startswith("⏳")],
        timeout=60,
    )
    await asyncio.sleep(1.0)
    first.stop(signal.SIGKILL)
    assert not replies(emulator, chat["id"])
    second = cluster("worker", "second", DEFAULT_METHOD="embedding")
    await emulator.wait_until(lambda: replies(emulator, chat["id"]), timeout=120)
    await drained(emulator, redis_url)
    messages = emulator.bot_messages(chat["id"])
    assert len(messages) == 1, [m["text"][:80] for m in messages]
    assert messages[0]["text"].startswith("Embedding")
    sends = [c for c in emulator.calls_to("sendMessage") if c.params.get("chat_id") == chat["id"]]
    assert len(sends) == 1, "the new worker edited the placeholder instead of sending again"
    assert "taking over 1 unfinished updates" in second.text()


async def postgres_started(dsn: str) -> Any:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval("SELECT pg_postmaster_start_time()")
    finally:
        await connection.close()


async def test_one_process_with_redis_runs_ingress_and_worker_and_rides_out_a_postgres_restart(
    emulator: BotAPIEmulator, cluster: Any, postgres_server: str
) -> None:
    bot = cluster("", "combined")  # `python -m bot` with REDIS_URL: ingress + worker
    await asyncio.wait_for(emulator.polling_started.wait(), 90)
    await bot.ready("owns partitions")
    user = emulator.add_user(61, "Ana", "es")
    chat = emulator.private_chat(user)
    await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    await emulator.wait_until(lambda: len(replies(emulator, chat["id"])) == 1, timeout=60)
    before = await postgres_started(postgres_server)
    if await asyncio.to_thread(restart_postgres, postgres_server):
        assert await postgres_started(postgres_server) > before, "PostgreSQL was restarted"
    await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    await emulator.wait_until(lambda: len(replies(emulator, chat["id"])) == 2, timeout=60)
    # Its pooled connections died with the server; the worker reconnected and answered.
    assert len(emulator.bot_messages(chat["id"])) == 2


async def test_a_webhook_ingress_queues_each_update_once_for_the_workers(
    emulator: BotAPIEmulator, cluster: Any, redis_url: tuple[str, str]
) -> None:
    import aiohttp

    from bot.run import SECRET_HEADER

    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    worker = cluster("worker", "worker")
    await worker.ready("handling queued updates")
    ingress = cluster(
        "ingress",
        "ingress",
        WEBHOOK_URL=url,
        WEBHOOK_SECRET="s3cret-value",
        WEBHOOK_LISTEN="127.0.0.1",
        WEBHOOK_PORT=str(port),
    )
    await ingress.ready("ingress: queueing updates")
    assert emulator.webhook["secret_token"] == "s3cret-value"
    user = emulator.add_user(71, "Wendy", "en")
    chat = emulator.private_chat(user)
    payload = update(9001, chat["id"], "/start").to_dict()
    payload["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": 6}]
    payload["message"]["from"] = user
    payload["message"]["chat"] = chat
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=payload, headers={SECRET_HEADER: "wrong"}) as response:
            assert response.status == 403
        for _ in range(2):  # Telegram delivered it twice
            async with session.post(
                url, json=payload, headers={SECRET_HEADER: "s3cret-value"}
            ) as response:
                assert response.status == 200
        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert (await response.json())["ok"] is True
    await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]), timeout=30)
    await drained(emulator, redis_url, polled=False)
    assert len(emulator.bot_messages(chat["id"])) == 1
    for process in (worker, ingress):
        assert emulator.token not in process.text(), "the token never reaches the logs"


async def test_cancel_reaches_the_worker_that_runs_the_generation(
    emulator: BotAPIEmulator,
    tmp_path: Path,
    redis_url: tuple[str, str],
    postgres_dsn: str,
) -> None:
    """Two workers (in this process) and an ingress: each chat's /generate and its /cancel go to
    the one worker that owns the chat's stream, so the generation stops."""
    from bot.app import BotRuntime
    from bot.factories import Services
    from bot.run import QueueIngress
    from tests.conftest import make_settings
    from tests.test_e2e_generation import NoKeywords, NoSummaries, ScriptedWriter

    settings = make_settings(
        emulator,
        tmp_path / "data",
        redis_url=redis_url[0],
        redis_prefix=redis_url[1],
        database_url=postgres_dsn,
        storage_key=encode_key(KEY),
        queue_partitions=4,
        worker_lease_seconds=2,
        stream_edit_seconds_private=0.2,
    )
    writers = [ScriptedWriter([f"w{i}" for i in range(600)], 0.02, capacity=4) for _ in range(2)]
    workers = [
        BotRuntime(
            settings,
            services=Services(summarizer=NoSummaries(), keywords=NoKeywords(), generator=writer),
            warm_up=False,
        )
        for writer in writers
    ]
    ingress = QueueIngress(settings)
    try:
        for number, worker in enumerate(workers):
            await worker.start_worker(name=f"w{number}")
        await wait_for(lambda: all(len(w.consumer.partitions) == 2 for w in workers), 15)
        await ingress.start(polling=True, poll_timeout=1)
        users = [emulator.add_user(80 + i, f"Gen{i}", "en") for i in range(4)]
        chats = [emulator.private_chat(user) for user in users]
        for user, chat in zip(users, chats, strict=True):
            await emulator.send_text(chat, user, "/generate Tell me a long story")
        # In private chats the generations stream into message drafts.
        await emulator.wait_until(
            lambda: {c["id"] for c in chats} <= {chat_id for chat_id, _ in emulator.drafts}, 30
        )
        assert all(writer.prompts for writer in writers), "both workers are generating"
        for user, chat in zip(users, chats, strict=True):
            await emulator.send_text(chat, user, "/cancel")
        for chat in chats:
            final = await emulator.wait_until(
                lambda c=chat: next(
                    (m for m in emulator.bot_messages(c["id"]) if "(stopped)" in m["text"]), None
                ),
                timeout=30,
            )
            assert "w599" not in final["text"]
            # The reply to /cancel waits its turn in the chat's pace (edits count).
            await emulator.wait_until(
                lambda c=chat: any(
                    m["text"] == "Stopping." for m in emulator.bot_messages(c["id"])
                ),
                timeout=30,
            )
            texts = [m["text"] for m in emulator.bot_messages(chat["id"])]
            assert "Nothing is being written here." not in texts, "it reached the right worker"
    finally:
        await ingress.stop()
        for worker in workers:
            await worker.stop()


async def test_the_first_worker_hands_the_single_process_inbox_over_to_the_queue(
    emulator: BotAPIEmulator, cluster: Any, postgres_dsn: str
) -> None:
    """A bot ran as one process, stopped with an update kept but not handled; it restarts with
    REDIS_URL: the update is queued in Redis, answered by a worker, and done in the inbox."""
    user = emulator.add_user(640, "Lea", "en")
    chat = emulator.private_chat(user)
    pending = {
        "update_id": 777_001,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        },
    }
    store = await PostgresStore.open(postgres_dsn, storage_key=encode_key(KEY))
    try:
        await store.inbox_add([(777_001, chat["id"], json.dumps(pending))])
    finally:
        await store.close()
    worker = cluster("worker", "worker0")
    await worker.ready("handling queued updates")
    answer = await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]), timeout=60)
    assert "/summary" in answer[0]["text"]
    assert "handed 1 unfinished updates from the inbox over to the Redis queue" in worker.text()
    store = await PostgresStore.open(postgres_dsn, storage_key=encode_key(KEY))
    try:
        assert await store.inbox_pending() == []
    finally:
        await store.close()


def stop_in_mid_send(
    emulator: BotAPIEmulator, worker: Process, chat_id: int, containing: str = ""
) -> list[int]:
    """SIGSTOP ``worker`` as Telegram receives its first ``sendMessage`` to ``chat_id`` (with
    ``containing`` in its text), before it reads the answer; the list gets the message id."""
    stopped: list[int] = []

    def listener(event: str, payload: dict[str, Any]) -> None:
        params = payload.get("params") or {}
        if (
            event == "call"
            and payload.get("method") == "sendMessage"
            and str(params.get("chat_id")) == str(chat_id)
            and containing in str(params.get("text"))
            and not stopped
        ):
            worker.process.send_signal(signal.SIGSTOP)
            stopped.append(int(payload["result"]["message_id"]))

    emulator.add_listener(listener)
    return stopped


async def test_an_automatic_catchup_is_sent_once_when_its_worker_stalls_mid_send(
    emulator: BotAPIEmulator, cluster: Any, redis_url: tuple[str, str]
) -> None:
    """Two workers; a member who asked for ``/catchup auto`` comes back. The worker sending
    her catch-up is stopped in the middle of the send (before it can acknowledge the update);
    the other takes the group's stream over and handles the update again: she still gets one
    catch-up."""
    extra = {"CATCHUP_AFTER_HOURS": "0.002", "DIGEST_RETENTION_DAYS": "1"}  # 7.2 s away
    workers = [cluster("worker", f"worker{i}", **extra) for i in range(2)]
    for worker in workers:
        await worker.ready("owns partitions")
    cluster("ingress", "ingress", **extra)
    await asyncio.wait_for(emulator.polling_started.wait(), 60)
    group_id = -1009000000777
    group = emulator.group_chat(group_id, "Allotments")
    ana, bob = emulator.add_user(61, "Ana", "en"), emulator.add_user(62, "Bob", "en")
    emulator.set_member_status(group_id, ana["id"], "creator")
    emulator.set_member_status(group_id, emulator.bot_user["id"], "administrator")
    private = emulator.private_chat(ana)

    async def answered(chat: dict[str, Any], sent: dict[str, Any]) -> None:
        await emulator.wait_until(
            lambda: any(
                m.get("reply_to_message", {}).get("message_id") == sent["message_id"]
                for m in emulator.bot_messages(chat["id"])
            ),
            timeout=60,
        )

    await emulator.send_text(private, ana, "/start")
    await emulator.wait_until(lambda: emulator.bot_messages(private["id"]), timeout=60)
    await answered(group, await emulator.send_text(group, ana, "/digest_on"))
    await answered(group, await emulator.send_text(group, ana, "/catchup auto"))
    asked = await emulator.send_text(group, ana, "Who waters the beans while I am away?")
    await emulator.send_text(group, bob, "I will water the beans every evening.", reply_to=asked)
    away_until = time.monotonic() + 8.0
    await drained(emulator, redis_url)

    owner = next(w for w in workers if group_id % 8 in owned_partitions(w.text()))
    stopped = stop_in_mid_send(emulator, owner, private["id"], "Catch-up")
    # She is away for longer than the setting: what is awaited is the clock itself.
    await asyncio.sleep(max(0.0, away_until - time.monotonic()))
    await emulator.send_text(group, ana, "Back from holidays!")
    await emulator.wait_until(lambda: stopped, timeout=60)
    other = next(w for w in workers if w is not owner)
    try:
        await emulator.wait_until(
            lambda: group_id % 8 in owned_partitions(other.text()), timeout=60
        )
        await drained(emulator, redis_url)
    finally:
        owner.process.send_signal(signal.SIGCONT)
    catchups = [m for m in emulator.bot_messages(private["id"]) if "Catch-up" in m["text"]]
    assert len(catchups) == 1, [m["text"][:60] for m in catchups]
    assert "water the beans every evening" in catchups[0]["text"]
    assert "taking over 1 unfinished updates" in other.text(), "the update was handled again"


async def test_a_send_that_leaves_after_a_take_over_is_taken_back(
    emulator: BotAPIEmulator, cluster: Any, redis_url: tuple[str, str]
) -> None:
    """The lease is checked right before a send, but a worker can stall between that check and
    Telegram receiving the send. Stopped there (its placeholder already in the chat), its
    stream is taken over and the other worker answers; when it continues it deletes what it
    sent late, and the chat is left with one answer."""
    workers = [cluster("worker", f"worker{i}") for i in range(2)]
    for worker in workers:
        await worker.ready("owns partitions")
    cluster("ingress", "ingress")
    await asyncio.wait_for(emulator.polling_started.wait(), 60)
    await emulator.wait_until(lambda: all(owned_partitions(w.text()) for w in workers), timeout=60)
    user = emulator.add_user(71, "Gil", "en")
    chat = emulator.private_chat(user)
    owner = next(w for w in workers if chat["id"] % 8 in owned_partitions(w.text()))
    other = next(w for w in workers if w is not owner)
    stopped = stop_in_mid_send(emulator, owner, chat["id"])
    await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    await emulator.wait_until(lambda: stopped, timeout=60)
    try:
        await emulator.wait_until(
            lambda: any(
                m["message_id"] != stopped[0] and m["text"].startswith("LexRank")
                for m in emulator.bot_messages(chat["id"])
            ),
            timeout=60,
        )
    finally:
        owner.process.send_signal(signal.SIGCONT)
    await emulator.wait_until(
        lambda: [c for c in emulator.calls_to("deleteMessage") if c.ok], timeout=30
    )
    await drained(emulator, redis_url)
    messages = emulator.bot_messages(chat["id"])
    assert [m["text"][:7] for m in messages] == ["LexRank"], messages
    assert messages[0]["message_id"] != stopped[0]
    await owner.ready("was taken back", 30)  # its log, written once the delete returned
    assert "taking over 1 unfinished" in other.text()
