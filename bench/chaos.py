"""A randomized fault schedule against the whole deployment, and a checker: every message is
answered exactly once, and each chat's answers come in the order asked.

Everything as deployed, as separate processes on this machine: the Bot API emulator (here),
``python -m bot ingress``, N × ``python -m bot worker``, a private ``redis-server`` with the
production persistence (AOF, ``appendfsync always``) and a throwaway PostgreSQL database. C
private chats send numbered requests at random moments for S seconds — ``/summary`` commands
and forwarded articles (answered by the forward batch), some edited afterwards (an edit is not
a new request) — and a group with digests on chats beside them: one member opted out, some
messages edited, a daily digest scheduled inside the run when it is long enough. Meanwhile a
seeded schedule injects, one every few seconds:

- ``kill``: kill -9 a worker (and start a new one, as an orchestrator would);
- ``stall``: SIGSTOP a worker for 1.5–3 lease periods, then SIGCONT (a long pause: its
  partitions are taken over, and when it wakes its fencing tokens are stale);
- ``redis``: restart Redis (what it acknowledged is in its append-only file);
- ``postgres``: terminate every connection of the database;
- ``duplicate``: Telegram delivers an update it already delivered;
- ``storm``: the next sends are answered 429 with ``retry_after``.

After the traffic, the run waits until every request is answered (or a deadline passes), then
checks, from the emulator's record of the chats and from the database: each request has
exactly one answer (one bot message replying to it, edited to its final text), none is
missing, none came twice, and in each chat the answers are in the order of the requests; the
group's kept messages are exactly those of the members who did not opt out (none of the
opted-out member's); the scheduled digest was posted once. The emulator refuses any Bot API
call that does not conform (a broken call would fail the check as a missing answer). It
reports the faults injected per kind, the requests, the violations and the answer latency
(request to final text, p50 / p95).

    .venv/bin/python bench/chaos.py [--seed 1] [--chats 200] [--seconds 300 | --minutes 5]
        [--workers 3]
        [--faults kill,stall,redis,postgres,duplicate,storm] [--every 6] [--json]

Prints a table (``--json``: the whole report); exits 1 when the checker finds a violation.
``tests/test_chaos.py`` runs a short seeded schedule of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import random
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
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
FORWARD_GAP = 3.0
"""Seconds after a forward before the chat's next request (FORWARD_BATCH_SECONDS is 1)."""
GROUP_ID = -1009000000001
GROUP_MESSAGES = 30
GROUP_LINES = (
    "{name} here: the tram strike on Monday moves our meeting online.",
    "Has anyone finished the novel for Thursday's book club?",
    "{name} will bring the projector and the extension cable.",
    "The library room is booked from six to eight on Thursday.",
    "Remember the membership fee of 15 euros is due this week.",
    "I think the second half of the novel drags, the ending saves it.",
)
NEWS_SITE = {"id": 777, "is_bot": False, "first_name": "A news site"}
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
    sent_at: dict[tuple[int, int], float] = field(default_factory=dict)
    """(chat id, request id) → when it was sent (monotonic)."""
    kinds: Counter[str] = field(default_factory=Counter)
    """Requests and other traffic by kind."""
    group: dict[str, Any] = field(default_factory=dict)
    """The group: its id, who opted out, how many messages each member sent, the schedule."""


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
            kinds = [rng.choice(("command", "command", "forward")) for _ in moments]
            for k in range(1, len(moments)):
                # A forward waits FORWARD_BATCH_SECONDS for more: the next request comes
                # later, so that each forward is a batch (and a request) of its own.
                if kinds[k - 1] == "forward":
                    moments[k] = max(moments[k], moments[k - 1] + FORWARD_GAP)
            sent: list[int] = []
            self.run.requests[room["id"]] = sent
            start = time.monotonic()
            for k, (moment, kind) in enumerate(zip(moments, kinds, strict=True), start=1):
                await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
                body = f"Request {k} of chat {number}. {TEXT}"
                if kind == "forward":
                    message = await self.emulator.send_text(
                        room, user, body, forward_from=NEWS_SITE
                    )
                else:
                    message = await self.emulator.send_text(room, user, f"/summary {body}")
                self.run.sent_at[(room["id"], message["message_id"])] = time.monotonic()
                self.run.kinds[kind] += 1
                sent.append(message["message_id"])
                if rng.random() < 0.3:  # corrected a moment later: not a new request
                    await asyncio.sleep(rng.uniform(0.1, 1.0))
                    await self.emulator.edit_text(room, message["message_id"], f"{body} (edited)")
                    self.run.kinds["edit"] += 1

        await asyncio.gather(*(chat(n) for n in range(chats)), self.group_traffic(rng, seconds))

    async def group_traffic(self, rng: random.Random, seconds: float) -> None:
        """A group with digests on: an admin turns them on (and schedules a daily digest
        inside the run when it is long enough), a member opts out, everyone chats, some
        messages are edited."""
        group = self.emulator.group_chat(GROUP_ID, "Chaos club", supergroup=True)
        admin = self.emulator.add_user(800_001, "Ana", "en")
        members = [
            self.emulator.add_user(800_000 + n, name, "en")
            for n, name in ((2, "Bob"), (3, "Carla"), (4, "Dan"))
        ]
        self.emulator.set_member_status(GROUP_ID, admin["id"], "creator")
        self.emulator.set_member_status(GROUP_ID, self.emulator.bot_user["id"], "administrator")
        opted = members[-1]
        self.run.group = {
            "id": GROUP_ID,
            "opted_out": opted["id"],
            "sent": Counter(),
            "schedule": "",
        }
        await self.answered_in_group(await self.emulator.send_text(group, admin, "/digest_on"))
        await self.answered_in_group(await self.emulator.send_text(group, opted, "/optout"))
        if seconds >= 150:
            at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds / 2)
            clock = f"{at:%H:%M}"
            self.run.group["schedule"] = clock
            self.run.group["schedule_at"] = (
                time.monotonic()
                + (at.replace(second=0, microsecond=0) - dt.datetime.now(dt.UTC)).total_seconds()
            )
            await self.answered_in_group(
                await self.emulator.send_text(group, admin, f"/schedule {clock} UTC")
            )
        speakers = [admin, *members]
        start = time.monotonic()
        for moment in sorted(rng.uniform(0, seconds) for _ in range(GROUP_MESSAGES)):
            await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
            speaker = rng.choice(speakers)
            message = await self.emulator.send_text(
                group, speaker, rng.choice(GROUP_LINES).format(name=speaker["first_name"])
            )
            self.run.group["sent"][speaker["id"]] += 1
            self.run.kinds["group"] += 1
            if rng.random() < 0.2:
                await self.emulator.edit_text(group, message["message_id"], message["text"] + " !")
                self.run.kinds["group edit"] += 1

    async def answered_in_group(self, sent: dict[str, Any]) -> None:
        """Wait (through any fault) for the bot's reply to a command in the group."""
        await self.emulator.wait_until(
            lambda: any(
                m.get("reply_to_message", {}).get("message_id") == sent["message_id"]
                for m in self.emulator.bot_messages(GROUP_ID)
            ),
            timeout=120,
        )

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
    latencies = answer_latencies(emulator, run)
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
        "latency_s": {
            "p50": round(statistics.median(latencies), 2) if latencies else None,
            "p95": round(percentile(latencies, 95), 2) if latencies else None,
        },
        "ok": not (missing or twice or unfinished or out_of_order),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def answer_latencies(emulator: BotAPIEmulator, run: Run) -> list[float]:
    """Seconds from each answered request to its answer's final text (the last send or edit
    of the message that replies to it)."""
    final_at: dict[tuple[int, int], float] = {}
    for call in emulator.calls:
        if call.ok and call.method in ("sendMessage", "editMessageText"):
            chat = call.params.get("chat_id")
            if call.method == "editMessageText" and call.params.get("message_id"):
                final_at[(int(chat), int(call.params["message_id"]))] = call.at
    latencies = []
    for chat_id, requests in run.requests.items():
        for answer in emulator.bot_messages(chat_id):
            request = answer.get("reply_to_message", {}).get("message_id")
            sent = run.sent_at.get((chat_id, request)) if request in requests else None
            if sent is None:
                continue
            done = final_at.get((chat_id, answer["message_id"]))
            if done is None:  # never edited: sent final; its send is the newest call to it
                sends = [
                    c.at
                    for c in emulator.calls
                    if c.ok
                    and c.method == "sendMessage"
                    and c.params.get("chat_id") in (chat_id, str(chat_id))
                    and c.at >= sent
                ]
                done = min(sends) if sends else None
            if done is not None:
                latencies.append(done - sent)
    return latencies


async def check_group(
    emulator: BotAPIEmulator, run: Run, dsn: str, ended: float
) -> dict[str, Any]:
    """The group's kept messages are those of the members who did not opt out, all of them and
    none of the opted-out member's; a digest scheduled inside the run was posted once."""
    group = run.group
    if not group:
        return {"ok": True}
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT user_id, count(*) FROM group_messages WHERE chat_id = $1 GROUP BY user_id",
            group["id"],
        )
    finally:
        await connection.close()
    kept = {int(user): int(count) for user, count in rows}
    expected = {u: n for u, n in group["sent"].items() if u != group["opted_out"]}
    digests = [
        m for m in emulator.bot_messages(group["id"]) if m.get("text", "").startswith("Digest ·")
    ]
    due = bool(group.get("schedule")) and group.get("schedule_at", 1e18) + 30 < ended
    report = {
        "kept_by_member": {str(u): kept.get(u, 0) for u in sorted(set(expected) | set(kept))},
        "sent_by_member": {str(u): n for u, n in sorted(group["sent"].items())},
        "opted_out": group["opted_out"],
        "opted_out_kept": kept.get(group["opted_out"], 0),
        "schedule": group.get("schedule", ""),
        "scheduled_digests": len(digests),
    }
    report["ok"] = (
        report["opted_out_kept"] == 0
        and all(kept.get(u, 0) == n for u, n in expected.items())
        and (len(digests) == 1 if due else len(digests) <= 1)
    )
    return report


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
        group = await check_group(emulator, chaos.run, dsn, time.monotonic())
        report.update(
            seed=seed,
            chats=chats,
            seconds=seconds,
            workers=workers,
            faults=chaos.run.faults,
            drained_in_s=round(time.monotonic() - traffic_done, 1),
            started_at=round(chaos.started, 3),
            queues_empty=drained,
            group=group,
            traffic=dict(chaos.run.kinds),
            ok=report["ok"] and drained and group["ok"],
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
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
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
    print(json.dumps(report, indent=2) if args.json else table(report))
    sys.exit(0 if report["ok"] else 1)


def table(report: dict[str, Any]) -> str:
    """The run as a few lines: faults per kind, traffic, violations, latency."""
    faults = Counter(kind for _, kind, _ in report["faults"])
    violations = {
        "missing": len(report["missing"]),
        "answered twice": len(report["answered_twice"]),
        "left as a placeholder": len(report["unfinished"]),
        "chats out of order": len(report["chats_out_of_order"]),
        "opted-out messages kept": report["group"].get("opted_out_kept", 0),
        "group messages not kept": sum(
            max(0, n - report["group"].get("kept_by_member", {}).get(u, 0))
            for u, n in report["group"].get("sent_by_member", {}).items()
            if int(u) != report["group"].get("opted_out", 0)
        ),
        "scheduled digests posted": (
            f"{report['group'].get('scheduled_digests', 0)} (want 1)"
            if report["group"].get("schedule")
            else "none scheduled (a run of 150 s or more schedules one)"
        ),
        "queues not drained": 0 if report["queues_empty"] else 1,
    }
    lines = [
        f"chaos run: seed {report['seed']}, {report['chats']} chats, {report['seconds']:.0f} s, "
        f"{report['workers']} workers",
        "",
        "| fault | injected |",
        "|---|---:|",
        *(f"| {kind} | {faults.get(kind, 0)} |" for kind in FAULTS),
        "",
        "| traffic | count |",
        "|---|---:|",
        *(f"| {kind} | {count} |" for kind, count in sorted(report["traffic"].items())),
        "",
        "| check | value |",
        "|---|---:|",
        f"| requests answered exactly once | {report['answered_once']} of {report['requests']} |",
        *(f"| {name} | {value} |" for name, value in violations.items()),
        f"| effects discarded by fenced workers | {report['discarded_effects']} |",
        f"| answer latency p50 / p95 | {report['latency_s']['p50']} / "
        f"{report['latency_s']['p95']} s |",
        "",
        "verdict: " + ("0 violations" if report["ok"] else "VIOLATIONS (see --json)"),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
