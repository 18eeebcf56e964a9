"""/generate, /ask and /cancel through the Bot API emulator, with a scripted generator."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.errors import Busy
from services.core.types import KeywordResult, Prompt, Summary, SummaryOptions
from tests.conftest import BotFactory


class NoSummaries:
    def methods(self) -> list[str]:
        return ["lexrank"]

    async def summarize(self, text: str, options: SummaryOptions) -> Summary:
        raise AssertionError("not used")


class NoKeywords:
    async def extract(self, text: str, top_n: int = 10, language: str = "") -> KeywordResult:
        raise AssertionError("not used")


class ScriptedWriter:
    """A TextGenerator that writes ``words`` one by one, ``delay`` seconds apart."""

    def __init__(self, words: list[str], delay: float, capacity: int = 1) -> None:
        self.words = words
        self.delay = delay
        self.capacity = capacity
        self.active = 0
        self.prompts: list[Prompt] = []

    async def stream(
        self, prompt: Prompt, cancel: threading.Event, max_new_tokens: int | None = None
    ) -> AsyncIterator[str]:
        if self.active >= self.capacity:
            raise Busy("full")
        self.active += 1
        self.prompts.append(prompt)
        try:
            for word in self.words:
                if cancel.is_set():
                    break
                await asyncio.sleep(self.delay)
                yield word + " "
        finally:
            self.active -= 1

    def expected_wait(self) -> tuple[int, float]:
        return 0, 0.0


async def start(make_bot: BotFactory, writer: ScriptedWriter, **settings: Any) -> None:
    services = Services(summarizer=NoSummaries(), keywords=NoKeywords(), generator=writer)
    await make_bot(services=services, **settings)


@pytest.fixture
def dana(emulator: BotAPIEmulator) -> tuple[dict[str, Any], dict[str, Any]]:
    user = emulator.add_user(30, "Dana", "en")
    return user, emulator.private_chat(user)


def placeholder(emulator: BotAPIEmulator, chat_id: int) -> dict[str, Any] | None:
    return next((m for m in emulator.bot_messages(chat_id) if m.get("_edits")), None)


def answer(emulator: BotAPIEmulator, chat_id: int) -> dict[str, Any] | None:
    """The bot's answer in a private chat (drafts are not messages; the answer is one)."""
    return next(iter(emulator.bot_messages(chat_id)), None)


async def test_in_private_generation_streams_into_a_draft_then_sends_one_message(
    emulator: BotAPIEmulator, make_bot: BotFactory, dana: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    words = [f"word{i}" for i in range(30)]
    await start(make_bot, ScriptedWriter(words, 0.05), stream_edit_seconds_private=0.3)
    user, chat = dana
    sent = await emulator.send_text(chat, user, "/generate Once upon a time")
    final = await emulator.wait_until(lambda: answer(emulator, chat["id"]))
    assert final["text"] == " ".join(words)
    assert final["reply_to_message"]["message_id"] == sent["message_id"]
    assert not emulator.calls_to("editMessageText") and len(emulator.bot_messages(chat["id"])) == 1
    drafts = emulator.calls_to("sendMessageDraft")
    shown = emulator.drafts[(chat["id"], sent["message_id"])]
    assert shown[0] == "⏳ Writing…"
    assert len(drafts) >= 3, "intermediate states were shown"
    assert all("▌" in text for text in shown[1:])
    gaps = [b.at - a.at for a, b in zip(drafts[1:-1], drafts[2:], strict=False)]
    assert all(gap >= 0.28 for gap in gaps), f"drafts at most every 0.3 s, got {gaps}"


async def test_in_a_group_generation_streams_into_the_placeholder_with_throttled_edits(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    words = [f"word{i}" for i in range(30)]
    await start(make_bot, ScriptedWriter(words, 0.05), stream_edit_seconds_group=0.3)
    user = emulator.add_user(35, "Gus", "en")
    group = emulator.group_chat(-1003535, "Writers")
    await emulator.send_text(group, user, "/generate Once upon a time")
    final = await emulator.wait_until(
        lambda: (
            (m := placeholder(emulator, group["id"]))
            and "▌" not in m["text"]
            and m["text"].endswith("word29")
            and m
        )
    )
    assert final["text"] == " ".join(words)
    assert not emulator.calls_to("sendMessageDraft")
    edits = emulator.calls_to("editMessageText")
    assert len(edits) >= 3, "intermediate states were shown"
    assert all("▌" in c.params["text"] for c in edits[:-1])
    gaps = [b.at - a.at for a, b in zip(edits[:-2], edits[1:-1], strict=False)]
    assert all(gap >= 0.28 for gap in gaps), f"edits at most every 0.3 s, got {gaps}"


async def test_cancel_stops_a_running_generation(
    emulator: BotAPIEmulator, make_bot: BotFactory, dana: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    writer = ScriptedWriter([f"w{i}" for i in range(400)], 0.02)
    await start(make_bot, writer, stream_edit_seconds_private=0.1)
    user, chat = dana
    await emulator.send_text(chat, user, "/generate Tell me a long story")
    await emulator.wait_until(lambda: len(emulator.calls_to("sendMessageDraft")) >= 2)
    await emulator.send_text(chat, user, "/cancel")
    final = await emulator.wait_until(
        lambda: next(
            (m for m in emulator.bot_messages(chat["id"]) if "(stopped)" in m["text"]), None
        )
    )
    assert "w399" not in final["text"]
    assert any(m["text"] == "Stopping." for m in emulator.bot_messages(chat["id"]))
    await emulator.send_text(chat, user, "/cancel")
    await emulator.wait_until(
        lambda: any(
            m["text"] == "Nothing is being written here."
            for m in emulator.bot_messages(chat["id"])
        )
    )


async def test_a_full_generator_answers_busy_at_once(
    emulator: BotAPIEmulator, make_bot: BotFactory, dana: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    writer = ScriptedWriter([f"w{i}" for i in range(100)], 0.05)
    await start(make_bot, writer)
    user, chat = dana
    other = emulator.add_user(31, "Eli", "es")
    other_chat = emulator.private_chat(other)
    await emulator.send_text(chat, user, "/generate A long one")
    await emulator.wait_until(lambda: writer.active == 1)
    await emulator.send_text(other_chat, other, "/generate Otro")
    busy = await emulator.wait_until(
        lambda: next(
            (m for m in emulator.bot_messages(other_chat["id"]) if "ocupado" in m["text"]), None
        ),
        timeout=3,
    )
    assert "inténtalo de nuevo" in busy["text"]


async def test_ask_about_a_replied_message(
    emulator: BotAPIEmulator, make_bot: BotFactory, dana: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    writer = ScriptedWriter(["It", "is", "about", "trams."], 0.01)
    await start(make_bot, writer)
    user, chat = dana
    original = await emulator.send_text(chat, user, "The council approved three tram lines.")
    await emulator.send_text(chat, user, "/ask What is this about?", reply_to=original)
    await emulator.wait_until(
        lambda: any(m["text"] == "It is about trams." for m in emulator.bot_messages(chat["id"]))
    )
    prompt = writer.prompts[0]
    assert prompt.instruct and prompt.text == "What is this about?"
    assert prompt.context == "The council approved three tram lines."


async def test_429_on_an_edit_is_retried_and_the_answer_completes(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    writer = ScriptedWriter([f"t{i}" for i in range(20)], 0.05)
    await start(make_bot, writer, stream_edit_seconds_group=0.2)
    user = emulator.add_user(36, "Hana", "en")
    chat = emulator.group_chat(-1003636, "Writers")
    emulator.inject_fault("editMessageText", 429, retry_after=1)
    await emulator.send_text(chat, user, "/generate Go")
    final = await emulator.wait_until(
        lambda: (m := placeholder(emulator, chat["id"])) and m["text"].endswith("t19") and m
    )
    assert "▌" not in final["text"]
    failed = [c for c in emulator.calls if c.method == "editMessageText" and not c.ok]
    assert failed and "retry after 1" in failed[0].error


async def test_a_real_engine_streams_through_the_bot_to_the_end(
    emulator: BotAPIEmulator,
    make_bot: BotFactory,
    dana: tuple[dict[str, Any], dict[str, Any]],
    tiny_gpt2: Any,
    tmp_path: Any,
) -> None:
    from services.core.executor import ModelExecutor
    from services.llm.engines import GenerationLimits, TransformersEngine
    from services.llm.service import GenerationService

    engine = TransformersEngine(str(tiny_gpt2), tmp_path)
    generator = GenerationService(engine, ModelExecutor(1, 1), GenerationLimits(max_new_tokens=30))
    await start(make_bot, generator)  # type: ignore[arg-type]
    user, chat = dana
    await emulator.send_text(chat, user, "/generate The council")
    final = await emulator.wait_until(lambda: answer(emulator, chat["id"]), timeout=30)
    assert final["text"].strip() and "(stopped)" not in final["text"]


class SlowEngine:
    """An ``Engine`` that writes a word every ``delay`` seconds (blocking, like a real one)."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self, prompt: Prompt, max_new_tokens: int, temperature: float, cancel: threading.Event
    ) -> Iterator[str]:
        for word in ("one", "two", "three", "four", "five", "six"):
            if cancel.is_set():
                return
            time.sleep(self.delay)
            yield word + " "


async def test_a_queued_request_sees_its_place_in_line(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    from services.core.executor import ModelExecutor
    from services.llm.engines import GenerationLimits
    from services.llm.service import GenerationService

    service = GenerationService(SlowEngine(0.3), ModelExecutor(1, 2), GenerationLimits())
    await start_with(make_bot, service)
    first = emulator.add_user(41, "First", "en")
    second = emulator.add_user(42, "Second", "en")
    sent = await emulator.send_text(emulator.private_chat(first), first, "/generate Count:")
    await emulator.wait_until(lambda: emulator.drafts.get((41, sent["message_id"])), timeout=10)
    sent = await emulator.send_text(emulator.private_chat(second), second, "/generate Count:")
    waiting = await emulator.wait_until(
        lambda: emulator.drafts.get((42, sent["message_id"])), timeout=10
    )
    assert waiting[0].startswith("⏳ In line: 1 ahead of you, about ")
    done = await emulator.wait_until(
        lambda: [m for m in emulator.bot_messages(42) if "six" in m["text"]], timeout=30
    )
    assert done[0]["text"].startswith("one two")


async def start_with(make_bot: BotFactory, generator: Any) -> None:
    services = Services(summarizer=NoSummaries(), keywords=NoKeywords(), generator=generator)
    await make_bot(services=services)


async def test_a_shutdown_stops_generations_and_says_why(
    emulator: BotAPIEmulator, make_bot: BotFactory, dana: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    writer = ScriptedWriter([f"w{i}" for i in range(400)], 0.02)
    services = Services(summarizer=NoSummaries(), keywords=NoKeywords(), generator=writer)
    runtime = await make_bot(services=services, stream_edit_seconds_private=0.1)
    user, chat = dana
    await emulator.send_text(chat, user, "/generate Tell me a long story")
    await emulator.wait_until(lambda: len(emulator.calls_to("sendMessageDraft")) >= 2)
    left = await runtime.drain(5.0)  # what SIGTERM does first
    assert left == 0
    final = answer(emulator, chat["id"])
    assert final is not None and "the bot is restarting" in final["text"]
    assert "w399" not in final["text"]
    # No new update is taken any more.
    await emulator.send_text(chat, user, "/help")
    await asyncio.sleep(1.0)
    assert not any("Condensa" in m["text"] for m in emulator.bot_messages(chat["id"]))
