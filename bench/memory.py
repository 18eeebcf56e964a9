"""The bot's resident memory as deployed: idle after start-up, then after real requests.

Starts the Bot API emulator here and ``python -m bot`` as its own process (default settings,
the background warm-up on), waits until the warm-up has finished, reads the process's resident
set (VmRSS) idle, then sends /summary and /keywords of a news text in English and in Spanish,
waits for each answer and reads VmRSS again (and the peak, VmHWM). Run once per MiniLM runtime.

    .venv/bin/python bench/memory.py [--runtimes onnx,torch]
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
from bench.summary_latency import sample_text  # noqa: E402
from playground.api import BotAPIEmulator  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval"
WARM_LINE = "models warm"


def spanish_text() -> str:
    """A real Spanish news article (BASSE), or the test suite's when ../shared is absent."""
    path = EVAL / "summ_es_basse_dev22.jsonl"
    if path.exists():
        return str(json.loads(path.read_text().splitlines()[0])["text"])
    from tests.conftest import SPANISH_ARTICLE

    return SPANISH_ARTICLE


async def ask(
    emulator: BotAPIEmulator, chat: dict[str, Any], user: dict[str, Any], text: str
) -> None:
    """Send ``text`` and wait until the bot's answer to it is final."""
    before = len(emulator.bot_messages(int(chat["id"])))
    sent = await emulator.send_text(chat, user, text)

    def done() -> bool:
        for message in emulator.bot_messages(int(chat["id"]))[before:]:
            replied = message.get("reply_to_message", {}).get("message_id") == sent["message_id"]
            if replied and not message["text"].startswith("⏳"):
                return True
        return False

    await emulator.wait_until(done, 120)
    await asyncio.sleep(3.2)  # the chat's outbound pace refills: the next request is not held


async def measure(runtime: str) -> dict[str, Any]:
    english, spanish = sample_text(600), spanish_text()
    emulator = BotAPIEmulator()
    await emulator.start()
    with tempfile.TemporaryDirectory() as data_dir:
        env = bot_env(emulator, data_dir, LOG_LEVEL="INFO", EMBEDDINGS_RUNTIME=runtime)
        process = await start_bot(env, data_dir, stderr=asyncio.subprocess.PIPE)
        assert process.stderr is not None
        try:
            started = time.monotonic()
            while (
                WARM_LINE not in (await asyncio.wait_for(process.stderr.readline(), 180)).decode()
            ):
                pass
            warm_seconds = time.monotonic() - started
            drain = asyncio.create_task(process.stderr.read())  # keep the pipe from filling
            await asyncio.sleep(5)
            idle = status_mb(process.pid, "VmRSS")
            user = emulator.add_user(1, "Bench", "en")
            chat = emulator.private_chat(user)
            for text in (english, spanish):
                await ask(emulator, chat, user, "/summary " + text)
                await ask(emulator, chat, user, "/keywords " + text)
            await asyncio.sleep(2)
            after = status_mb(process.pid, "VmRSS")
            peak = status_mb(process.pid, "VmHWM")
        finally:
            process.terminate()
            await process.wait()
        drain.cancel()
    await emulator.stop()
    return {
        "runtime": runtime,
        "warm_up_s": round(warm_seconds, 1),
        "idle_mb": round(idle),
        "after_mb": round(after),
        "peak_mb": round(peak),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runtimes", default="onnx,torch", help="EMBEDDINGS_RUNTIME values")
    args = parser.parse_args()
    rows = [asyncio.run(measure(runtime)) for runtime in args.runtimes.split(",")]
    print("| `python -m bot`, MiniLM runtime | ready s | idle MB | after en+es MB | peak MB |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['runtime']} | {row['warm_up_s']} | {row['idle_mb']} | {row['after_mb']} | "
            f"{row['peak_mb']} |"
        )
    out = REPO / "bench" / "results" / "memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
