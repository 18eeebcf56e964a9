"""Soak: many distinct chats with mixed commands; does the bot's memory stay flat?

Starts the Bot API emulator here and ``python -m bot`` as its own process (as deployed, with
OUTBOUND_PER_SECOND raised so the pace is not what is measured), then sends waves of updates,
each from chats the bot has never seen: /start, /help, a short text (answered with "send me a
longer text"), /settings, /summary of a five-sentence text, /keywords. A wave is sent at once
(the bot's bounded intake pauses getUpdates while MAX_UPDATES_IN_HAND are in hand) and is
complete when every chat of it got its answer. After each wave the bot's VmRSS is read.
Prints a table (chats so far, answered, RSS) and writes bench/results/soak.json.

    .venv/bin/python bench/soak.py [--chats 100000] [--wave 5000] [--timeout 900]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.load import bot_env, start_bot, status_mb  # noqa: E402
from playground.api import BotAPIEmulator  # noqa: E402

SHORT_ARTICLE = (
    "The council approved a new tram line on Monday. It will cost 450 million euros. "
    "Construction starts in the spring. Residents can comment on the route. "
    "A final decision on a second line is expected next year."
)
COMMANDS = (
    "/start",
    "/help",
    "hello there",
    "/settings",
    "/summary " + SHORT_ARTICLE,
    "/keywords " + SHORT_ARTICLE,
)
ANSWERING = ("sendMessage", "editMessageText")


async def wave(
    emulator: BotAPIEmulator, first_id: int, size: int, patience: float
) -> tuple[int, float]:
    """``size`` new chats each send one command (cycling through :data:`COMMANDS`); returns
    (chats answered, seconds). A chat is answered by its first final message (a summary's
    placeholder edited into the answer counts once it is no longer the placeholder)."""
    waiting: set[int] = set()
    seen = len(emulator.calls)
    started = time.monotonic()
    for number in range(size):
        user = emulator.add_user(first_id + number, f"Soak {number}", "en")
        chat = emulator.private_chat(user)
        waiting.add(int(chat["id"]))
        await emulator.send_text(chat, user, COMMANDS[number % len(COMMANDS)])
    deadline = time.monotonic() + patience
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        calls = emulator.calls
        for call in calls[seen:]:
            if call.method in ANSWERING and call.ok:
                if str(call.params.get("text", "")).startswith("⏳"):
                    continue
                waiting.discard(int(call.params.get("chat_id", 0)))
        seen = len(calls)
    return size - len(waiting), time.monotonic() - started


async def main(chats: int, size: int, patience: float) -> list[dict[str, Any]]:
    emulator = BotAPIEmulator()
    await emulator.start()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        env = bot_env(emulator, data_dir, OUTBOUND_PER_SECOND="100000", LOG_LEVEL="WARNING")
        process = await start_bot(env, data_dir)
        try:
            await asyncio.wait_for(emulator.polling_started.wait(), 120)
            total = 0
            first_id = 1_000_000
            while total < chats:
                count = min(size, chats - total)
                answered, seconds = await wave(emulator, first_id, count, patience)
                total += count
                first_id += count
                row = {
                    "chats": total,
                    "answered": answered,
                    "of": count,
                    "seconds": round(seconds, 1),
                    "updates_per_second": round(count / seconds, 1),
                    "rss_mb": round(status_mb(process.pid, "VmRSS"), 1),
                    "peak_rss_mb": round(status_mb(process.pid, "VmHWM"), 1),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                # The emulator keeps every call and message; the bot does not need them.
                emulator.calls.clear()
        finally:
            process.terminate()
            await process.wait()
    await emulator.stop()
    return rows


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument("--wave", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    rows = asyncio.run(main(args.chats, args.wave, args.timeout))
    print("Soak: distinct chats, mixed commands, python -m bot as deployed")
    print("| chats so far | answered in wave | wave s | updates/s | bot RSS MB | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['chats']:,} | {row['answered']}/{row['of']} | {row['seconds']} | "
            f"{row['updates_per_second']} | {row['rss_mb']} | {row['peak_rss_mb']} |"
        )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    run()
