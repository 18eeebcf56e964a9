"""A randomized fault schedule against the whole deployment, and a checker: every message is
answered exactly once, and each chat's answers come in the order asked.

Everything as deployed, as separate processes on this machine: the Bot API emulator (here),
``python -m bot ingress``, N × ``python -m bot worker``, a private ``redis-server`` with the
production persistence (AOF, ``appendfsync always``) and a throwaway PostgreSQL database. C
private chats send numbered ``/summary`` requests at random moments for S seconds while a
seeded schedule injects, one every few seconds:

- ``kill``: kill -9 a worker (and start a new one, as an orchestrator would);
- ``stall``: SIGSTOP a worker for 1.5–3 lease periods, then SIGCONT (a long pause: its
  partitions are taken over, and when it wakes its fencing tokens are stale);
- ``redis``: restart Redis (what it acknowledged is in its append-only file);
- ``postgres``: terminate every connection of the database;
- ``duplicate``: Telegram delivers an update it already delivered;
- ``storm``: the next sends are answered 429 with ``retry_after``.

After the traffic, the run waits until every request is answered (or a deadline passes), then
checks, from the emulator's record of the chats: each request has exactly one answer (one bot
message replying to it, edited to its final text), none is missing, none came twice, and in
each chat the answers are in the order of the requests. The emulator refuses any Bot API call
that does not conform (a broken call would fail the check as a missing answer).

    .venv/bin/python bench/chaos.py [--seed 1] [--chats 200] [--seconds 300 | --minutes 5]
        [--workers 3]
        [--faults kill,stall,redis,postgres,duplicate,storm] [--every 6]

Prints a JSON report; exits 1 when the checker finds a violation. ``tests/test_chaos.py`` runs
a short seeded schedule of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402

from bench.cluster import (  # noqa: E402
    POSTGRES,
    Deployment,
    base_env,
    drop_database,
    throwaway_database,
)
from bot.delivery.queue import QueueNames  # noqa: E402
from playground.api import BotAPIEmulator  # noqa: E402

FAULTS = ("kill", "stall", "redis", "postgres", "duplicate", "storm")
PREFIX = "chaos"
LEASE_SECONDS = 2.0
TEXT = (
    "The city council approved a plan to expand the tram network on Monday. The plan adds "
    "three lines and doubles the night buses. Council members said it would cut traffic and "
    "pollution in the centre. The project costs 450 million euros over six years. Most of the "
    "money comes from a regional fund and a new parking tax. Construction starts in spring."
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Redis:
    """A private redis-server with the production persistence, restartable."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = await asyncio.create_subprocess_exec(
            binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
            *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
            stdout=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.process = None


@dataclass
class Run:
    """What one run did and saw."""

    seed: int
    faults: list[tuple[float, str, str]] = field(default_factory=list)
    """(seconds since start, fault, detail)."""
    requests: dict[int, list[int]] = field(default_factory=dict)
    """chat id → message ids of its requests, in the order sent."""


class Chaos:
    """The deployment under a fault schedule."""

    def __init__(
        self, emulator: BotAPIEmulator, deployment: Deployment, redis: Redis, database: str
    ) -> None:
        self.emulator = emulator
        self.deployment = deployment
        self.redis = redis
        self.database = database
        self.started = time.monotonic()
        self.run = Run(0)
        self.delivered: list[dict[str, Any]] = []
        """Every message update the emulator queued (to deliver one again)."""
        emulator.add_listener(self._seen)

    def _seen(self, event: str, payload: dict[str, Any]) -> None:
        if event == "update" and "message" in payload:
            self.delivered.append(payload)

    def workers(self) -> list[asyncio.subprocess.Process]:
        return [
            p
            for role, p, _ in self.deployment.processes
            if role == "worker" and p.returncode is None
        ]

    def note(self, fault: str, detail: str) -> None:
        self.run.faults.append((round(time.monotonic() - self.started, 1), fault, detail))

    async def inject(self, fault: str, rng: random.Random) -> None:
        if fault == "kill":
            victim = rng.choice(self.workers())
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            await self.deployment.launch("worker")
            self.note(fault, f"pid {victim.pid}")
        elif fault == "stall":
            victim = rng.choice(self.workers())
            seconds = round(rng.uniform(1.5, 3.0) * LEASE_SECONDS, 1)
            victim.send_signal(signal.SIGSTOP)
            self.note(fault, f"pid {victim.pid} for {seconds} s")
            await asyncio.sleep(seconds)
            victim.send_signal(signal.SIGCONT)
        elif fault == "redis":
            await self.redis.stop()
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await self.redis.start()
            self.note(fault, "restarted")
        elif fault == "postgres":
            admin = await asyncpg.connect(POSTGRES)
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    self.database,
                )
            finally:
                await admin.close()
            self.note(fault, f"{killed} connections")
        elif fault == "duplicate":
            if self.delivered:
                again = rng.choice(self.delivered)
                await self.emulator.redeliver(again)
                self.note(fault, f"update {again['update_id']}")
        elif fault == "storm":
            times = rng.randint(3, 12)
            for method in ("sendMessage", "editMessageText"):
                self.emulator.inject_fault(method, 429, times=times, retry_after=1)
            self.note(fault, f"{times} × 429 on sends and edits")
        else:
            raise ValueError(f"unknown fault {fault}")

    async def traffic(
        self, rng: random.Random, chats: int, seconds: float, requests_per_chat: int
    ) -> None:
        """Each chat sends its requests at random moments within ``seconds``."""

        async def chat(number: int) -> None:
            user = self.emulator.add_user(900_000 + number, f"User {number}", "en")
            room = self.emulator.private_chat(user)
            moments = sorted(rng.uniform(0, seconds) for _ in range(requests_per_chat))
            sent: list[int] = []
            self.run.requests[room["id"]] = sent
            start = time.monotonic()
            for k, moment in enumerate(moments, start=1):
                await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
                message = await self.emulator.send_text(
                    room, user, f"/summary Request {k} of chat {number}. {TEXT}"
                )
                sent.append(message["message_id"])

        await asyncio.gather(*(chat(n) for n in range(chats)))

    async def faults(
        self, rng: random.Random, kinds: list[str], every: float, until: float
    ) -> None:
        order: list[str] = []
        while time.monotonic() < until:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * every)
            if time.monotonic() >= until:
                return
            if not order:
                order = list(kinds)
                rng.shuffle(order)
            await self.inject(order.pop(), rng)


def check(emulator: BotAPIEmulator, run: Run) -> dict[str, Any]:
    """Exactly once, in order, nothing left as a placeholder."""
    missing: list[tuple[int, int]] = []
    twice: list[tuple[int, int, list[str]]] = []
    unfinished: list[tuple[int, int]] = []
    out_of_order: list[int] = []
    for chat_id, requests in run.requests.items():
        answers = emulator.bot_messages(chat_id)
        by_request: dict[int, list[dict[str, Any]]] = {}
        for answer in answers:
            replied = answer.get("reply_to_message", {}).get("message_id")
            if replied is not None:
                by_request.setdefault(replied, []).append(answer)
        for request in requests:
            found = by_request.get(request, [])
            if not found:
                missing.append((chat_id, request))
            elif len(found) > 1:
                twice.append((chat_id, request, [m["text"][:60] for m in found]))
            elif found[0]["text"].startswith("⏳"):
                unfinished.append((chat_id, request))
        firsts = [by_request[r][0]["message_id"] for r in requests if by_request.get(r)]
        if firsts != sorted(firsts):
            out_of_order.append(chat_id)
    total = sum(len(r) for r in run.requests.values())
    broken = {c for c, *_ in missing + twice + unfinished} | set(out_of_order)
    timeline = {
        chat: [
            (round(call.at, 3), call.method, call.params.get("message_id"), call.ok)
            for call in emulator.calls
            if call.params.get("chat_id") == chat and call.method != "sendChatAction"
        ]
        for chat in sorted(broken)[:3]
    }
    return {
        "timeline": timeline,
        "requests": total,
        "answered_once": total - len(missing) - len(twice) - len(unfinished),
        "missing": missing[:20],
        "answered_twice": twice[:20],
        "unfinished": unfinished[:20],
        "chats_out_of_order": out_of_order[:20],
        "ok": not (missing or twice or unfinished or out_of_order),
    }


def answered(emulator: BotAPIEmulator, run: Run) -> bool:
    """Every request has a final answer (a duplicate may still be on its way)."""
    report = check(emulator, run)
    return not report["missing"] and not report["unfinished"]


async def queues_empty(redis_url: str, partitions: int, seconds: float) -> bool:
    """Every stream entry was acknowledged (and deleted) within ``seconds``: no worker holds
    an update, so no answer is still coming."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        for _ in range(int(seconds / 0.2)):
            with contextlib.suppress(Exception):  # Redis may be restarting
                names = QueueNames(PREFIX, partitions)
                lengths = [await client.xlen(names.stream(p)) for p in range(partitions)]
                if not any(lengths):
                    return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await client.aclose()


def copy_logs(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in source.glob("*.log"):
        shutil.copy(log, target / log.name)


async def chaos_run(
    seed: int,
    chats: int,
    seconds: float,
    workers: int,
    kinds: list[str],
    every: float,
    requests_per_chat: int = 3,
    drain_seconds: float = 180.0,
    logs: Path | None = None,
) -> dict[str, Any]:
    """One seeded run; returns the report (``ok`` False on a violation)."""
    rng = random.Random(seed)
    emulator = BotAPIEmulator()
    await emulator.start()
    name, dsn = await throwaway_database()
    directory = Path(tempfile.mkdtemp(prefix="condensa-chaos-"))
    redis = Redis(directory)
    await redis.start()
    env = base_env(
        emulator,
        str(directory / "data"),
        REDIS_URL=redis.url,
        REDIS_PREFIX=PREFIX,
        DATABASE_URL=dsn,
        WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        QUEUE_PARTITIONS="8",
        DEFAULT_METHOD="lexrank",
        FORWARD_BATCH_SECONDS="1",
    )
    deployment = Deployment(emulator, directory, env)
    chaos = Chaos(emulator, deployment, redis, name)
    chaos.run.seed = seed
    try:
        for _ in range(workers):
            await deployment.launch("worker")
        await deployment.wait_for_log("handling queued updates", workers)
        await deployment.launch("ingress")
        await asyncio.wait_for(emulator.polling_started.wait(), 60)
        chaos.started = time.monotonic()
        until = chaos.started + seconds
        await asyncio.gather(
            chaos.traffic(rng, chats, seconds, requests_per_chat),
            chaos.faults(random.Random(seed + 1), kinds, every, until),
        )
        traffic_done = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await emulator.wait_until(lambda: answered(emulator, chaos.run), timeout=drain_seconds)
        drained = await queues_empty(redis.url, 8, drain_seconds)
        report = check(emulator, chaos.run)
        report.update(
            seed=seed,
            chats=chats,
            seconds=seconds,
            workers=workers,
            faults=chaos.run.faults,
            drained_in_s=round(time.monotonic() - traffic_done, 1),
            started_at=round(chaos.started, 3),
            queues_empty=drained,
            ok=report["ok"] and drained,
            discarded_effects=sum(
                log.read_text(errors="replace").count("this effect is discarded")
                for _, _, log in deployment.processes
            ),
        )
        return report
    finally:
        await deployment.stop()
        if logs is not None:
            await asyncio.to_thread(copy_logs, directory, logs)
        await redis.stop()
        await emulator.stop()
        await drop_database(name)
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--minutes", type=float, help="the same in minutes (wins over --seconds)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--requests-per-chat", type=int, default=3)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--every", type=float, default=6.0, help="seconds between faults")
    parser.add_argument("--logs", type=Path, help="copy the processes' logs here")
    args = parser.parse_args()
    kinds = [k for k in args.faults.split(",") if k]
    if args.minutes is not None:
        args.seconds = args.minutes * 60
    report = asyncio.run(
        chaos_run(
            args.seed,
            args.chats,
            args.seconds,
            args.workers,
            kinds,
            args.every,
            args.requests_per_chat,
            logs=args.logs,
        )
    )
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
