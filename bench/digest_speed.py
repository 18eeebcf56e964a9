"""/digest over 10,000 stored messages, end to end through the Bot API emulator.

The messages are real conversation turns (DialogSum's dialogues, then CNN/DM sentences until
the count is reached), stored for one supergroup; then "/digest 10000" is sent and timed until
the word cloud arrives. Meanwhile a ticker measures how late the event loop runs (it must stay
responsive) and a /start in another chat is timed. The bot runs as deployed: the digest starts
after the start-up warm-up has loaded the models (and frozen the start-up objects).

    .venv/bin/python bench/digest_speed.py [--messages 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.app import BotRuntime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from playground.api import BotAPIEmulator  # noqa: E402
from services.core.types import ChatMessage  # noqa: E402
from services.text.splitting import split_sentences  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval"
GROUP_ID = -1001000000001


def conversation(count: int) -> list[ChatMessage]:
    """``count`` real conversation turns as messages of one group, a minute apart."""
    turns: list[tuple[str, str]] = []
    for line in (EVAL / "summ_en_dialogsum_dev200.jsonl").read_text().splitlines():
        for turn in json.loads(line)["text"].splitlines():
            author, _, text = turn.partition(": ")
            if text:
                turns.append((author, text))
    for line in (EVAL / "summ_en_cnndm_summeval100.jsonl").read_text().splitlines():
        turns.extend(
            (f"Reader{i % 7}", s) for i, s in enumerate(split_sentences(json.loads(line)["text"]))
        )
    start = int(time.time()) - 60 * count
    return [
        ChatMessage(GROUP_ID, i + 1, 1 + hash(author) % 50, author, start + 60 * i, text)
        for i, (author, text) in enumerate((turns * (count // len(turns) + 1))[:count])
    ]


async def measure(count: int, runs: int) -> dict[str, Any]:
    emulator = BotAPIEmulator()
    await emulator.start()
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            telegram_bot_token=emulator.token,
            telegram_api_url=emulator.url,
            data_dir=Path(data_dir),
        )
        runtime = BotRuntime(settings)  # as deployed: the background warm-up on
        await runtime.start(polling=True, poll_timeout=1)
        await emulator.polling_started.wait()
        await runtime.warmed_up()
        group = emulator.group_chat(GROUP_ID, "Bench")
        admin = emulator.add_user(1, "Admin")
        emulator.set_member_status(GROUP_ID, 1, "creator")
        other = emulator.add_user(2, "Other")
        private = emulator.private_chat(other)
        assert runtime.store is not None
        await runtime.store.set_digest_enabled(GROUP_ID, True)
        await runtime.store.save_messages(conversation(count))
        for _ in range(runs):
            lags: list[float] = []
            stop = asyncio.Event()

            async def ticker(lags: list[float] = lags, stop: asyncio.Event = stop) -> None:
                while not stop.is_set():
                    before = time.perf_counter()
                    await asyncio.sleep(0.05)
                    lags.append(time.perf_counter() - before - 0.05)

            tick = asyncio.create_task(ticker())
            started = time.perf_counter()
            sent = await emulator.send_text(group, admin, f"/digest {count}")
            await asyncio.sleep(0.5)
            ping_started = time.perf_counter()
            ping = await emulator.send_text(private, other, "/start")
            await emulator.wait_until(
                lambda ping=ping: any(
                    m["message_id"] > ping["message_id"] for m in emulator.bot_messages(2)
                ),
                120,
            )
            ping_seconds = time.perf_counter() - ping_started
            await emulator.wait_until(
                lambda sent=sent: any(
                    m["message_id"] > sent["message_id"] and "photo" in m
                    for m in emulator.bot_messages(GROUP_ID)
                ),
                300,
            )
            seconds = time.perf_counter() - started
            stop.set()
            await tick
            results.append(
                {"seconds": seconds, "max_loop_lag": max(lags), "start_reply": ping_seconds}
            )
            print(f"run: {results[-1]}", file=sys.stderr)
        digest_text = "\n".join(
            m["text"] for m in emulator.bot_messages(GROUP_ID)[-4:] if "text" in m
        )
        await runtime.stop()
    await emulator.stop()
    warm = results[1:] or results
    return {
        "messages": count,
        "first_run": results[0],
        "warm_median_seconds": statistics.median(r["seconds"] for r in warm),
        "warm_max_loop_lag": max(r["max_loop_lag"] for r in warm),
        "max_loop_lag": max(r["max_loop_lag"] for r in results),
        "warm_max_start_reply": max(r["start_reply"] for r in warm),
        "runs": results,
        "last_digest": digest_text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = asyncio.run(measure(args.messages, args.runs))
    print(report["last_digest"])
    print()
    first = report["first_run"]
    print(f"/digest over {report['messages']:,} stored messages")
    print(
        f"first run after start-up: {first['seconds']:.2f} s; "
        f"warm median: {report['warm_median_seconds']:.2f} s"
    )
    print(
        f"event loop: worst lag {report['max_loop_lag'] * 1000:.0f} ms over every run; "
        f"/start in another chat answered within {report['warm_max_start_reply']:.2f} s"
    )
    out = REPO / "bench" / "results" / "digest_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
