"""Every update answered once, in order: duplicates, bursts, pacing, crashes and restarts.

In-process bots poll the Bot API emulator; the crash and restart tests run ``python -m bot``
as a real process and kill it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.errors import Busy
from services.core.executor import ModelExecutor
from services.keywords.extractor import KeyBERTExtractor
from services.summarize.service import build_summary_service
from tests.conftest import ENGLISH_ARTICLE, BotFactory, long_article, settled

REPO = Path(__file__).resolve().parents[1]


def summary_services() -> Services:
    # As deployed: admission by expected wait (MODEL_MAX_WAIT), not by a handful of slots.
    executor = ModelExecutor(workers=1, queue=1000, max_wait=45)
    return Services(
        summarizer=build_summary_service(executor, max_chars=100_000, default_method="lexrank"),
        keywords=KeyBERTExtractor(executor),
        executor=executor,
    )


def command_message(
    emulator: BotAPIEmulator,
    chat: dict[str, Any],
    user: dict[str, Any],
    text: str,
    message_id: int,
) -> dict[str, Any]:
    command = text.split()[0]
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat,
        "from": user,
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
    }


def replies(emulator: BotAPIEmulator, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in emulator.bot_messages(chat_id) if not m["text"].startswith("⏳")]


def test_admission_follows_the_expected_wait_not_a_slot_count() -> None:
    async def scenario() -> None:
        executor = ModelExecutor(workers=1, queue=100, max_wait=15, first_estimate=10)
        gate = threading.Event()
        first = executor.submit(gate.wait, 10)
        second = executor.submit(gate.wait, 10)  # waits ~10 s: admitted
        assert executor.expected_wait() == (2, 20.0)
        with pytest.raises(Busy):
            executor.submit(gate.wait, 10)  # would wait ~20 s > 15 s
        gate.set()
        await asyncio.gather(first, second)
        # Measured service times replace the first guess: quick calls admit many more.
        assert executor.expected_wait()[1] < 10
        executor.shutdown()

    asyncio.run(scenario())


def test_a_cold_executor_refuses_by_expected_wait_only_once_it_has_measured() -> None:
    async def scenario() -> None:
        cold = ModelExecutor(workers=1, queue=100, max_wait=5)
        gate = threading.Event()
        burst = [cold.submit(gate.wait, 10) for _ in range(30)]  # a 1 s guess: 29 s, admitted
        gate.set()
        await asyncio.gather(*burst)
        cold.shutdown()

        measured = ModelExecutor(workers=1, queue=100, max_wait=5.5)
        await measured.run(time.sleep, 1.0)  # about 1 s per call, measured
        gate.clear()
        held = [measured.submit(gate.wait, 10) for _ in range(6)]  # 0 to 5 s of waiting
        with pytest.raises(Busy):
            measured.submit(gate.wait, 10)
        gate.set()
        await asyncio.gather(*held)
        measured.shutdown()

    asyncio.run(scenario())


async def test_the_same_update_delivered_twice_is_answered_once(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot(services=summary_services())
    user = emulator.add_user(21, "Dana", "en")
    chat = emulator.private_chat(user)
    update = await emulator.push_update(
        "message", command_message(emulator, chat, user, "/help", 9001)
    )
    await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]))
    await emulator.redeliver(update)  # Telegram never saw the acknowledgement
    await emulator.redeliver(update)
    await settled(emulator)
    assert len(emulator.bot_messages(chat["id"])) == 1
    assert runtime.store is not None and await runtime.store.inbox_pending() == []


async def test_sixty_chats_at_once_all_get_their_summary(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=summary_services())
    chats = []
    for number in range(60):
        user = emulator.add_user(1000 + number, f"User {number}", "en")
        chats.append((emulator.private_chat(user), user))
    await asyncio.gather(
        *(emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE) for chat, user in chats)
    )

    def answered() -> bool:
        return all(
            any(m["text"].startswith("LexRank") for m in replies(emulator, chat["id"]))
            for chat, _ in chats
        )

    await emulator.wait_until(answered, timeout=120)
    assert not any("busy" in m["text"] for chat, _ in chats for m in replies(emulator, chat["id"]))


async def test_one_chat_is_answered_in_order_at_a_pace_telegram_accepts(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=summary_services())
    user = emulator.add_user(31, "Eve", "en")
    chat = emulator.private_chat(user)
    sent = [await emulator.send_text(chat, user, f"/summary Note {n}.") for n in range(12)]
    answers = await emulator.wait_until(
        lambda: (found := emulator.bot_messages(chat["id"])) and len(found) >= 12 and found,
        timeout=60,
    )
    assert [m["reply_to_message"]["message_id"] for m in answers] == [
        m["message_id"] for m in sent
    ], "answered in the order asked"
    times = [
        c.at for c in emulator.calls_to("sendMessage") if c.params.get("chat_id") == chat["id"]
    ]
    assert len(times) == 12
    # A leaky bucket of 3 that drains one per second: never more than 3 + elapsed seconds.
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= 3 + (times[j] - times[i]) + 1, (i, j, times[j] - times[i])
    assert times[-1] - times[0] >= 7.0, "twelve answers took at least ~8 s, not one"


def bot_env(emulator: BotAPIEmulator, data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": emulator.token,
            "TELEGRAM_API_URL": emulator.url,
            "DATA_DIR": str(data),
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO),
            "FORWARD_BATCH_SECONDS": "3",
            "HEALTH_PORT": "0",
            **extra,
        }
    )
    return env


async def inbox_settled(emulator: BotAPIEmulator, data: Path, polled: bool = True) -> None:
    """The bot (a process of its own) took every update sent so far (it confirmed an offset
    past the newest, or a webhook's 200 came after the write) and marked each done in its
    inbox: no reply to them is still coming."""
    import sqlite3

    newest = emulator.last_update_id

    def done() -> bool:
        taken = not polled or any(
            int(c.params.get("offset") or 0) > newest
            for c in emulator.calls
            if c.method == "getUpdates"
        )
        if not taken:
            return False
        with sqlite3.connect(data / "condensa.sqlite3", timeout=5) as db:
            (pending,) = db.execute("SELECT count(*) FROM inbox WHERE done = 0").fetchone()
        return pending == 0

    await emulator.wait_until(done, timeout=60)


async def start_bot(
    emulator: BotAPIEmulator, data: Path, **extra: str
) -> asyncio.subprocess.Process:
    emulator.polling_started.clear()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=data.parent,
        env=bot_env(emulator, data, **extra),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.wait_for(emulator.polling_started.wait(), 90)
    return process


async def stop_bot(process: asyncio.subprocess.Process, how: int) -> float:
    """Signal the bot; returns how long it took to exit."""
    started = time.monotonic()
    process.send_signal(how)
    await asyncio.wait_for(process.wait(), 60)
    return time.monotonic() - started


async def test_killed_mid_summary_the_restarted_bot_answers_exactly_once(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    long_text = long_article(30)  # ~360 sentences: seconds of MiniLM work
    process = await start_bot(emulator, data, DEFAULT_METHOD="embedding")
    user = emulator.add_user(41, "Finn", "en")
    chat = emulator.private_chat(user)
    try:
        await emulator.send_text(chat, user, "/summary " + long_text)
        await emulator.wait_until(
            lambda: [m for m in emulator.bot_messages(chat["id"]) if m["text"].startswith("⏳")],
            timeout=60,
        )
        # Mid-summary: the placeholder is out and recorded (a crash in the few milliseconds
        # between Telegram's answer and that record would leave a second placeholder).
        await asyncio.sleep(1.0)
        await stop_bot(process, signal.SIGKILL)
        assert not replies(emulator, chat["id"])
        process = await start_bot(emulator, data, DEFAULT_METHOD="embedding")
        await emulator.wait_until(lambda: replies(emulator, chat["id"]), timeout=120)
        await inbox_settled(emulator, data)
        messages = emulator.bot_messages(chat["id"])
        assert len(messages) == 1, [m["text"][:80] for m in messages]
        assert messages[0]["text"].startswith("Embedding")
        sends = [
            c for c in emulator.calls_to("sendMessage") if c.params.get("chat_id") == chat["id"]
        ]
        assert len(sends) == 1, "the re-run did not send the placeholder again"
    finally:
        if process.returncode is None:
            await stop_bot(process, signal.SIGTERM)


async def test_forwards_buffered_at_sigterm_are_answered_after_the_restart(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    process = await start_bot(emulator, data)
    user = emulator.add_user(51, "Gil", "en")
    chat = emulator.private_chat(user)
    author = {"id": 99, "is_bot": False, "first_name": "Reporter"}
    sentences = ENGLISH_ARTICLE.split(". ")
    try:
        for start in (0, 4, 8):
            part = ". ".join(sentences[start : start + 4]) + "."
            await emulator.send_text(chat, user, part, forward_from=author)
        last = emulator.last_update_id
        # Kept: the bot confirms an offset past the forwards only once its inbox holds them
        # (and they wait in the 3 s batch window, not answered yet).
        await emulator.wait_until(
            lambda: any(
                int(c.params.get("offset") or 0) > last
                for c in emulator.calls
                if c.method == "getUpdates"
            ),
            timeout=30,
        )
        assert not emulator.bot_messages(chat["id"])
        took = await stop_bot(process, signal.SIGTERM)
        assert took < 10.0, f"SIGTERM took {took:.1f} s"
        assert process.returncode == 0
        assert not emulator.bot_messages(chat["id"])
        process = await start_bot(emulator, data)
        answer = await emulator.wait_until(lambda: replies(emulator, chat["id"]), timeout=90)
        assert len(answer) == 1 and "3 of 12" in answer[0]["text"], answer[0]["text"]
    finally:
        if process.returncode is None:
            await stop_bot(process, signal.SIGTERM)


async def test_sigterm_while_the_model_loads_exits_within_the_limit(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    process = await start_bot(emulator, data, DEFAULT_METHOD="embedding", SHUTDOWN_SECONDS="5")
    user = emulator.add_user(61, "Hana", "en")
    chat = emulator.private_chat(user)
    try:
        await emulator.send_text(chat, user, "/summary " + long_article(30))
        await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]), timeout=60)
        took = await stop_bot(process, signal.SIGTERM)
        assert took < 10.0, f"SIGTERM took {took:.1f} s"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_request_that_must_wait_says_its_place_in_line(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    from services.summarize.service import SummaryService
    from tests.test_e2e_chat import BlockingRanker, UnusedKeywords

    ranker = BlockingRanker()
    executor = ModelExecutor(workers=1, queue=10, max_wait=60, first_estimate=8)
    services = Services(
        summarizer=SummaryService(executor, {"lexrank": ranker}),
        keywords=UnusedKeywords(),
        executor=executor,
    )
    await make_bot(services=services)
    first, second = emulator.add_user(71, "Ines", "en"), emulator.add_user(72, "Jon", "en")
    await emulator.send_text(emulator.private_chat(first), first, "/summary " + ENGLISH_ARTICLE)
    await asyncio.to_thread(ranker.started.wait, 10)
    chat = emulator.private_chat(second)
    await emulator.send_text(chat, second, "/summary " + ENGLISH_ARTICLE)
    waiting = await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]), timeout=10)
    assert waiting[0]["text"].startswith("⏳ In line: 1 ahead of you, about 8 s")
    ranker.release.set()
    await emulator.wait_until(
        lambda: any(m["text"].startswith("LexRank") for m in emulator.bot_messages(chat["id"]))
    )


async def test_the_inbox_keeps_updates_sealed_until_done_and_forgets_old_ones(
    tmp_path: Path,
) -> None:
    from services.storage.sqlite import SQLiteStore

    store = await SQLiteStore.open(tmp_path / "c.sqlite3", key_dir=tmp_path)
    try:
        payload = '{"update_id": 5, "message": {"text": "a secret plan"}}'
        assert await store.inbox_add([(5, 77, payload), (6, 77, "{}")]) == [5, 6]
        assert await store.inbox_add([(5, 77, payload)]) == []  # a duplicate
        assert [u for u, _ in await store.inbox_pending()] == [5, 6]
        await store.record_sent(5, 0, 77, '{"message_id": 1}')
        assert await store.sent_result(5, 0) == '{"message_id": 1}'
        assert await store.sent_result(5, 1) is None
        await store.inbox_done([5])
        assert [u for u, _ in await store.inbox_pending()] == [6]
        assert await store.purge_delivery(int(time.time()) + 10) == 1
        assert await store.sent_result(5, 0) is None
        assert await store.inbox_add([(5, 77, payload)]) == [5]  # forgotten after a day
    finally:
        await store.close()
    raw = (tmp_path / "c.sqlite3").read_bytes()
    assert b"a secret plan" not in raw, "updates are sealed at rest"


async def test_a_storm_of_429s_is_waited_out_instead_of_costing_the_answer() -> None:
    """Telegram answers 429 six times in a row (more than the three retries): the send still
    goes through once the storm passes; only past ``max_wait`` of waiting does it fail."""
    from telegram.error import RetryAfter

    from bot.delivery import PacedRequests

    calls = 0

    async def send_message(*args: Any, **kwargs: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls <= 6:
            raise RetryAfter(0)
        return {"message_id": 1}

    pacer = PacedRequests(max_wait=30)
    result = await pacer.process_request(send_message, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert result == {"message_id": 1} and calls == 7

    impatient = PacedRequests(max_retries=1, max_wait=0.5)
    calls = 0

    async def storm(*args: Any, **kwargs: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise RetryAfter(1)

    with pytest.raises(RetryAfter):
        await impatient.process_request(storm, (), {}, "sendMessage", {"chat_id": 6}, None)
    assert calls == 2, "one retry, then the wait budget is spent"
