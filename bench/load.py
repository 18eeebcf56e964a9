"""Bursts: N chats send /summary (default method) at the same moment, as deployed.

Starts the Bot API emulator here and ``python -m bot`` as its own process (default settings:
MODEL_MAX_WAIT, outbound pacing), then for each burst size sends one /summary of a ~300-word
news text from each of N new private chats at once and waits until every chat has either its
summary or the "busy" sentence (or the timeout: "lost"). Time to answer is from the user's
update being queued to the final text. Peak RSS is the bot process's VmHWM.

    .venv/bin/python bench/load.py [--bursts 60,200,1000] [--words 300] [--timeout 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.summary_latency import sample_text  # noqa: E402
from playground.api import BotAPIEmulator  # noqa: E402


def status_mb(pid: int, field: str) -> float:
    """A ``/proc/PID/status`` size field (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB."""
    return status_mb(pid, "VmHWM")


def bot_env(emulator: BotAPIEmulator, data_dir: str, **extra: str) -> dict[str, str]:
    """The environment of a ``python -m bot`` driven by ``emulator``: this one's, without any
    Telegram or webhook setting it may carry, plus the emulator, ``data_dir`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=emulator.token,
        TELEGRAM_API_URL=emulator.url,
        DATA_DIR=data_dir,
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
        HEALTH_PORT="0",
    )
    env.update(extra)
    return env


async def start_bot(
    env: dict[str, str], data_dir: str, stderr: Any = None
) -> asyncio.subprocess.Process:
    """``python -m bot`` as deployed, in ``data_dir`` with ``env`` (see :func:`bot_env`)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=data_dir,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=stderr,
    )


def final_outcome(text: str) -> str | None:
    """What a message the bot sent or edited says: the summary, "busy", or not yet."""
    if "busy" in text:
        return "busy"
    if not text.startswith("⏳") and "sentences" in text.split("\n", 1)[0]:
        return "answered"
    return None


def outcome(emulator: BotAPIEmulator, chat_id: int) -> str | None:
    """The outcome in one chat so far (reads the chat's messages: for a few chats only)."""
    for message in emulator.bot_messages(chat_id):
        found = final_outcome(message["text"])
        if found is not None:
            return found
    return None


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def burst(
    emulator: BotAPIEmulator, size: int, text: str, first_id: int, patience: float
) -> dict[str, Any]:
    """``size`` new chats send /summary at once. Outcomes are read from the emulator's call
    log incrementally, with each call's own timestamp: the harness must not eat the CPU the
    bot needs (rescanning every chat's messages 20 times a second did, at 1,000 chats)."""
    chats = []
    for number in range(size):
        user = emulator.add_user(first_id + number, f"Load {number}", "en")
        chats.append((emulator.private_chat(user), user))
    started: dict[int, float] = {}
    finished: dict[int, float] = {}
    results: dict[int, str] = {}
    seen = len(emulator.calls)
    for chat, user in chats:
        started[int(chat["id"])] = time.monotonic()
        await emulator.send_text(chat, user, "/summary " + text)
    deadline = time.monotonic() + patience
    while len(results) < size and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        calls = emulator.calls
        for call in calls[seen:]:
            if call.method not in ("sendMessage", "editMessageText") or not call.ok:
                continue
            chat_id = int(call.params.get("chat_id", 0))
            if chat_id in started and chat_id not in results:
                found = final_outcome(str(call.params.get("text", "")))
                if found is not None:
                    results[chat_id] = found
                    finished[chat_id] = call.at
        seen = len(calls)
    answered = [finished[c] - started[c] for c, r in results.items() if r == "answered"]
    span = (max(finished.values()) - min(started.values())) if finished else float("nan")
    return {
        "chats": size,
        "answered": sum(r == "answered" for r in results.values()),
        "busy": sum(r == "busy" for r in results.values()),
        "lost": size - len(results),
        "per_second": round(len(answered) / span, 2) if answered else 0.0,
        "p50_s": percentile(answered, 0.5),
        "p95_s": percentile(answered, 0.95),
        "p99_s": percentile(answered, 0.99),
        "mean_s": statistics.fmean(answered) if answered else float("nan"),
    }


async def main(bursts: list[int], words: int, patience: float) -> list[dict[str, object]]:
    text = sample_text(words)
    emulator = BotAPIEmulator()
    await emulator.start()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        process = await start_bot(bot_env(emulator, data_dir), data_dir)
        try:
            await asyncio.wait_for(emulator.polling_started.wait(), 120)
            # One request first, so the model is loaded (cold start is not what this measures).
            warm = await burst(emulator, 1, text, 900_000, patience)
            print(f"warm-up: {warm}", file=sys.stderr)
            first_id = 1_000_000
            for size in bursts:
                row = await burst(emulator, size, text, first_id, patience)
                row["peak_rss_mb"] = round(peak_rss_mb(process.pid), 1)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
                first_id += size
        finally:
            process.terminate()
            await process.wait()
    await emulator.stop()
    return rows


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", default="60,200,1000")
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    bursts = [int(n) for n in args.bursts.split(",")]
    rows = asyncio.run(main(bursts, args.words, args.timeout))
    print(f"/summary bursts, default method, {args.words}-word text, python -m bot as deployed")
    print("| chats | answered | busy | lost | p50 s | p95 s | p99 s | bot peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['chats']} | {row['answered']} | {row['busy']} | {row['lost']} | "
            f"{row['p50_s']:.2f} | {row['p95_s']:.2f} | {row['p99_s']:.2f} | "
            f"{row['peak_rss_mb']} |"
        )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "load.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    run()
