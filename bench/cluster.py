"""Scale-out: summaries per second and time to answer with 1, 2 and 4 workers, and what the
Redis queue adds per update.

Everything as deployed, as separate processes on this machine: the Bot API emulator (here),
``python -m bot ingress``, N × ``python -m bot worker``, Redis and PostgreSQL (the local
servers; a throwaway database and key prefix per run). For each method and worker count:
start the processes, send one warm-up /summary per stream (so every worker has loaded its
models; cold start is not what this measures), then 200 new private chats send /summary of the
same ~300-word news text at once. Throughput is answers ÷ (last answer − first send); time to
answer is from a chat's update to its final text.

Queue latency: the same /help from 40 new chats, one after another, through ``python -m bot``
without Redis (in-process inbox on SQLite) and with ``REDIS_URL`` (ingress → stream → worker,
same SQLite store): the median difference is what the queue path adds per update.

Outbound pace stays on (30 messages/s across the bot, shared in Redis) unless
``--outbound`` raises it: the rows say which.

    .venv/bin/python bench/cluster.py [--chats 200] [--workers 1,2,4]
        [--methods lexrank,embedding] [--outbound 30] [--latency-samples 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from bench.load import bot_env, burst, outcome, peak_rss_mb, percentile  # noqa: E402
from bench.summary_latency import sample_text  # noqa: E402
from playground.api import BotAPIEmulator  # noqa: E402
from services.storage.crypto import encode_key, new_key  # noqa: E402

POSTGRES = os.environ.get("CONDENSA_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("CONDENSA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
KEEP_LOGS: Path | None = None


class Deployment:
    """Processes of one configuration, their logs in a temporary directory."""

    def __init__(self, emulator: BotAPIEmulator, directory: Path, env: dict[str, str]) -> None:
        self.emulator = emulator
        self.directory = directory
        self.env = env
        self.processes: list[tuple[str, asyncio.subprocess.Process, Path]] = []

    async def launch(self, role: str) -> asyncio.subprocess.Process:
        log = self.directory / f"{role or 'bot'}-{len(self.processes)}.log"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *([role] if role else []),
            cwd=self.directory,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        self.processes.append((role, process, log))
        return process

    async def wait_for_log(self, marker: str, count: int, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while True:
            found = sum(marker in log.read_text(errors="replace") for _, _, log in self.processes)
            if found >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {found} of {count} processes logged {marker!r}")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        for _, process, _ in self.processes:
            if process.returncode is None:
                process.terminate()
        for _, process, _ in self.processes:
            await process.wait()

    def worker_rss(self) -> list[float]:
        return [
            round(peak_rss_mb(p.pid), 1)
            for role, p, _ in self.processes
            if role == "worker" and p.returncode is None
        ]


def keep_logs(source: Path, target: Path) -> None:
    """Copy a run's process logs (``--logs``)."""
    target.mkdir(parents=True, exist_ok=True)
    for log in source.glob("*.log"):
        shutil.copy(log, target / log.name)


async def throwaway_database() -> tuple[str, str]:
    name = f"condensa_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return name, POSTGRES.rsplit("/", 1)[0] + "/" + name


async def counters(database: str) -> dict[str, float]:
    """Redis commands processed so far (server-wide: the bench is alone on it) and the
    database's committed transactions and rows written (PostgreSQL's statistics)."""
    client = aioredis.from_url(REDIS)
    stats = await client.info("stats")
    await client.aclose()
    admin = await asyncpg.connect(POSTGRES)
    await asyncio.sleep(0.6)  # PostgreSQL publishes its statistics about every 0.5 s
    row = await admin.fetchrow(
        "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted AS written"
        " FROM pg_stat_database WHERE datname = $1",
        database,
    )
    await admin.close()
    return {
        "redis": float(stats["total_commands_processed"]),
        "commits": float(row["xact_commit"]) if row else 0.0,
        "rows": float(row["written"]) if row else 0.0,
    }


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def drop_prefix(prefix: str) -> None:
    client = aioredis.from_url(REDIS)
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        await client.delete(key)
    await client.aclose()


def base_env(emulator: BotAPIEmulator, data: str, **extra: str) -> dict[str, str]:
    """``bot_env`` with a fresh storage key (every process of one deployment gets the same)."""
    return bot_env(emulator, data, LOG_LEVEL="INFO", STORAGE_KEY=encode_key(new_key()), **extra)


async def scale_run(
    emulator: BotAPIEmulator,
    method: str,
    workers: int,
    chats: int,
    text: str,
    outbound: int,
    first_id: int,
    model_threads: int = 0,
) -> dict[str, Any]:
    name, dsn = await throwaway_database()
    prefix = f"condensa-bench-{secrets.token_hex(4)}"
    partitions = 16
    with tempfile.TemporaryDirectory() as data:
        env = base_env(
            emulator,
            data,
            REDIS_URL=REDIS,
            REDIS_PREFIX=prefix,
            DATABASE_URL=dsn,
            DEFAULT_METHOD=method,
            QUEUE_PARTITIONS=str(partitions),
            OUTBOUND_PER_SECOND=str(outbound),
            MODEL_THREADS=str(model_threads),
        )
        deployment = Deployment(emulator, Path(data), env)
        try:
            for _ in range(workers):
                await deployment.launch("worker")
            await deployment.wait_for_log("handling queued updates", workers)
            emulator.polling_started.clear()
            await deployment.launch("ingress")
            await asyncio.wait_for(emulator.polling_started.wait(), 60)
            await asyncio.sleep(3)  # leases settle: every worker holds its share
            # Warm-up: one chat per stream, so every worker has loaded its models.
            warm_ids = [first_id + i for i in range(partitions * 4)]
            warm_ids = [
                u
                for i, u in enumerate(warm_ids)
                if u % partitions not in {w % partitions for w in warm_ids[:i]}
            ][:partitions]
            for user_id in warm_ids:
                user = emulator.add_user(user_id, "Warm", "en")
                await emulator.send_text(emulator.private_chat(user), user, "/summary " + text)
            await emulator.wait_until(
                lambda: all(outcome(emulator, u) for u in warm_ids), timeout=300
            )
            before = await counters(name)
            row = await burst(emulator, chats, text, first_id + 10_000, patience=600)
            row = {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
            after = await counters(name)
            # Per update of the burst: what 1 million updates a day would cost (see README).
            row["redis_commands_per_update"] = round((after["redis"] - before["redis"]) / chats, 1)
            row["pg_commits_per_update"] = round((after["commits"] - before["commits"]) / chats, 1)
            row["pg_rows_written_per_update"] = round((after["rows"] - before["rows"]) / chats, 1)
            row.update(
                method=method,
                workers=workers,
                outbound_per_second=outbound,
                model_threads=model_threads,
                worker_peak_rss_mb=deployment.worker_rss(),
            )
            return row
        finally:
            await deployment.stop()
            await drop_database(name)
            await drop_prefix(prefix)
            if KEEP_LOGS is not None:
                keep_logs(Path(data), KEEP_LOGS / f"{method}-{workers}")


async def round_trips(
    emulator: BotAPIEmulator, env: dict[str, str], samples: int, first_id: int
) -> list[float]:
    with tempfile.TemporaryDirectory() as data:
        env = dict(env, DATA_DIR=data)
        deployment = Deployment(emulator, Path(data), env)
        emulator.polling_started.clear()
        try:
            await deployment.launch("")
            await asyncio.wait_for(emulator.polling_started.wait(), 120)
            await asyncio.sleep(2)
            times = []
            for number in range(samples + 3):
                user = emulator.add_user(first_id + number, "Ping", "en")
                chat = emulator.private_chat(user)
                started = time.perf_counter()
                await emulator.send_text(chat, user, "/help")
                await emulator.wait_until(lambda c=chat: emulator.bot_messages(c["id"]), 30)
                if number >= 3:  # the first ones warm the connections up
                    times.append((time.perf_counter() - started) * 1000)
            return times
        finally:
            await deployment.stop()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    text = sample_text(300)
    emulator = BotAPIEmulator()
    await emulator.start()
    rows: list[dict[str, Any]] = []
    first_id = 2_000_000
    try:
        for method in args.methods.split(","):
            for workers in (int(n) for n in args.workers.split(",")):
                row = await scale_run(
                    emulator,
                    method,
                    workers,
                    args.chats,
                    text,
                    args.outbound,
                    first_id,
                    args.model_threads,
                )
                first_id += 100_000
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
        prefix = f"condensa-bench-{secrets.token_hex(4)}"
        plain = await round_trips(emulator, base_env(emulator, ""), args.latency_samples, first_id)
        queued = await round_trips(
            emulator,
            base_env(emulator, "", REDIS_URL=REDIS, REDIS_PREFIX=prefix),
            args.latency_samples,
            first_id + 1000,
        )
        await drop_prefix(prefix)
    finally:
        await emulator.stop()
    latency = {
        "in_process_p50_ms": round(statistics.median(plain), 1),
        "queued_p50_ms": round(statistics.median(queued), 1),
        "added_p50_ms": round(statistics.median(queued) - statistics.median(plain), 1),
        "in_process_p95_ms": round(percentile(plain, 0.95), 1),
        "queued_p95_ms": round(percentile(queued, 0.95), 1),
        "samples": len(plain),
    }
    return {"scale": rows, "queue_latency": latency}


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--methods", default="lexrank,embedding")
    parser.add_argument("--outbound", type=int, default=30)
    parser.add_argument(
        "--model-threads", type=int, default=0, help="MODEL_THREADS of each worker (0: all)"
    )
    parser.add_argument("--latency-samples", type=int, default=40)
    parser.add_argument("--logs", type=Path, help="keep every process's log under this folder")
    args = parser.parse_args()
    global KEEP_LOGS
    KEEP_LOGS = args.logs
    result = asyncio.run(main(args))
    print(
        f"/summary from {args.chats} chats at once, ~300-word text, ingress + N workers + "
        "Redis + PostgreSQL on this 2-core machine, warm"
    )
    print(
        "| method | workers | threads each | outbound/s | answered | busy | lost | summaries/s "
        "| p50 s | p95 s | worker peak RSS MB | Redis cmds / update | PG commits / update "
        "| PG rows written / update |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for row in result["scale"]:
        print(
            f"| {row['method']} | {row['workers']} | {row.get('model_threads') or 'all'} | "
            f"{row['outbound_per_second']} | "
            f"{row['answered']} | {row['busy']} | {row['lost']} | {row['per_second']} | "
            f"{row['p50_s']} | {row['p95_s']} | {row['worker_peak_rss_mb']} | "
            f"{row['redis_commands_per_update']} | {row['pg_commits_per_update']} | "
            f"{row['pg_rows_written_per_update']} |"
        )
    latency = result["queue_latency"]
    print(
        f"\n/help round trip, {latency['samples']} chats one after another: in-process "
        f"p50 {latency['in_process_p50_ms']} ms (p95 {latency['in_process_p95_ms']}), "
        f"through Redis p50 {latency['queued_p50_ms']} ms (p95 {latency['queued_p95_ms']}): "
        f"the queue adds {latency['added_p50_ms']} ms"
    )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    run()
