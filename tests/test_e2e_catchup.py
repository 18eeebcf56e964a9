"""/catchup through the bot and the emulator: what a member missed, theirs first, in private."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.executor import ModelExecutor
from services.digest.service import DigestService
from services.keywords.extractor import KeyBERTExtractor
from services.summarize.service import build_summary_service
from tests.conftest import BotFactory

GROUP_ID = -1009876


def services() -> Services:
    executor = ModelExecutor(1, 4)
    keywords = KeyBERTExtractor(executor)
    return Services(
        summarizer=build_summary_service(executor, 100_000, default_method="lexrank"),
        keywords=keywords,
        executor=executor,
        digests=DigestService(executor, keywords.backend, keywords.cache),
    )


REST = [
    "The new chairs for the community hall arrived this morning and they look great.",
    "The garden beds near the entrance need watering, the soil is very dry.",
    "Someone left a blue umbrella in the community hall kitchen.",
    "The chairs are stacked by the stage until the cleaning crew comes.",
    "I watered half of the garden beds, the tomatoes look much better now.",
    "The blue umbrella belongs to my neighbour, I will pick it up.",
    "The cleaning crew finished the hall, the chairs are in rows now.",
    "Thanks for the garden work, the flowers by the entrance are blooming.",
]


def links(text_and_entities: dict[str, Any]) -> list[int]:
    """Message ids of the t.me links in a message, in order."""
    urls = [e.get("url", "") for e in text_and_entities.get("entities", [])]
    return [int(m.group(1)) for u in urls if (m := re.search(r"/(\d+)$", u))]


async def test_a_member_gets_what_concerns_them_first_in_private(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot(services=services())
    assert runtime.store is not None
    group = emulator.group_chat(GROUP_ID, "Community hall")
    emulator.set_member_status(GROUP_ID, emulator.bot_user["id"], "administrator")
    ana = emulator.add_user(201, "Ana", "en", username="ana_h")
    bob, carla = emulator.add_user(202, "Bob", "en"), emulator.add_user(203, "Carla", "en")
    dan = emulator.add_user(204, "Dan", "en")
    await runtime.store.set_digest_enabled(GROUP_ID, True)
    opted = await emulator.send_text(group, dan, "/optout")
    await emulator.wait_until(
        lambda: any(
            m.get("reply_to_message", {}).get("message_id") == opted["message_id"]
            for m in emulator.bot_messages(GROUP_ID)
        )
    )
    asked = await emulator.send_text(group, ana, "Can someone check the projector before Monday?")
    # Dan opted out: his answer and his mention of her are never kept, so never quoted.
    await emulator.send_text(
        group, dan, "The projector cable was replaced on Friday.", reply_to=asked
    )
    await emulator.send_text(group, dan, "@ana_h the storage key hangs behind the door.")
    replied = await emulator.send_text(
        group, bob, "Sure, I can look at the projector after lunch.", reply_to=asked
    )
    mention = await emulator.send_text(
        group, carla, "@ana_h do you still have the keys to the storage room?"
    )
    question = await emulator.send_text(group, bob, "Who is bringing the snacks for the party?")
    decided = await emulator.send_text(
        group, carla, "We decided to move the meeting to Thursday at 18:00."
    )
    for index, line in enumerate(REST):
        await emulator.send_text(group, (bob, carla)[index % 2], line)

    async def kept_all() -> bool:
        return len(await runtime.store.messages(GROUP_ID)) == 5 + len(REST)

    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while not await kept_all():
        assert loop.time() < end, "the group's messages were not kept"
        await asyncio.sleep(0.05)

    # Ana never started the bot: the group gets the deep link, and nothing is lost.
    command = await emulator.send_text(group, ana, "/catchup")
    notice = await emulator.wait_until(
        lambda: next(
            (
                m
                for m in emulator.bot_messages(GROUP_ID)
                if m.get("reply_to_message", {}).get("message_id") == command["message_id"]
            ),
            None,
        )
    )
    urls = [e.get("url", "") for e in notice.get("entities", [])]
    assert f"https://t.me/{emulator.bot_user['username']}?start=catchup_{GROUP_ID}" in urls

    private = emulator.private_chat(ana)
    await emulator.send_text(private, ana, f"/start catchup_{GROUP_ID}")
    catchup = await emulator.wait_until(
        lambda: next(
            (m for m in emulator.bot_messages(private["id"]) if "Catch-up" in m["text"]), None
        ),
        timeout=60,
    )
    text = catchup["text"]
    order = [text.index(h) for h in ("For you", "Open questions", "Decisions and dates")]
    assert order == sorted(order)
    assert "The rest, in short" in text and text.index("The rest, in short") > order[-1]
    for_you = text[order[0] : order[1]]
    open_questions = text[order[1] : order[2]]
    decisions = text[order[2] : text.index("The rest, in short")]
    assert "look at the projector" in for_you and "keys to the storage room" in for_you
    assert "snacks" in open_questions and "keys" not in open_questions
    assert "Thursday at 18:00" in decisions
    ids = links(catchup)
    assert ids[:4] == [
        replied["message_id"],
        mention["message_id"],
        question["message_id"],
        decided["message_id"],
    ]
    assert asked["message_id"] not in ids  # her own message is not news to her
    assert "cable" not in text and "behind the door" not in text and "Dan" not in text
    assert any(e["type"] == "expandable_blockquote" for e in catchup["entities"])

    # Now that she started the bot, /catchup in the group answers in private.
    before = len(emulator.bot_messages(private["id"]))
    again = await emulator.send_text(group, ana, "/catchup")
    sent = await emulator.wait_until(
        lambda: next(
            (
                m
                for m in emulator.bot_messages(GROUP_ID)
                if m.get("reply_to_message", {}).get("message_id") == again["message_id"]
            ),
            None,
        )
    )
    assert sent["text"] == "I sent you a catch-up in private."
    assert len(emulator.bot_messages(private["id"])) == before + 1


async def test_a_non_member_gets_no_catchup_from_the_link(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot(services=services())
    assert runtime.store is not None
    emulator.group_chat(GROUP_ID, "Community hall")
    stranger = emulator.add_user(209, "Eve", "en")
    emulator.set_member_status(GROUP_ID, 209, "left")
    await runtime.store.set_digest_enabled(GROUP_ID, True)
    private = emulator.private_chat(stranger)
    await emulator.send_text(private, stranger, f"/start catchup_{GROUP_ID}")
    reply = await emulator.wait_until(
        lambda: next(iter(emulator.bot_messages(private["id"])), None)
    )
    assert reply["text"] == "That catch-up link is for members of its group."


async def test_auto_catchup_fires_once_when_a_member_comes_back(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    now = [time.time() - 60]  # the bot's clock; messages carry the emulator's real dates
    runtime = await make_bot(services=services(), clock=lambda: now[0])
    assert runtime.store is not None
    group = emulator.group_chat(GROUP_ID, "Community hall")
    emulator.set_member_status(GROUP_ID, emulator.bot_user["id"], "administrator")
    ana, bob = emulator.add_user(211, "Ana", "en"), emulator.add_user(212, "Bob", "en")
    private = emulator.private_chat(ana)
    await runtime.store.set_digest_enabled(GROUP_ID, True)

    async def reply_to(sent: dict[str, Any]) -> dict[str, Any]:
        return await emulator.wait_until(
            lambda: next(
                (
                    m
                    for m in emulator.bot_messages(GROUP_ID)
                    if m.get("reply_to_message", {}).get("message_id") == sent["message_id"]
                ),
                None,
            )
        )

    opted = await reply_to(await emulator.send_text(group, ana, "/catchup auto"))
    assert opted["text"].startswith("Done: when you write here after 24 hours away")
    asked = await emulator.send_text(group, ana, "Does anyone know when the hall opens?")
    answer = await emulator.send_text(group, bob, "It opens at 9:00 on weekdays.", reply_to=asked)
    store = runtime.store

    async def both_kept() -> bool:
        return len(await store.messages(GROUP_ID)) == 2

    end = asyncio.get_running_loop().time() + 30
    while not await both_kept():  # the absence starts once they were handled
        assert asyncio.get_running_loop().time() < end
        await asyncio.sleep(0.05)
    now[0] += 25 * 3600
    back = await emulator.send_text(group, ana, "Hi all, I'm back")
    catchup = await emulator.wait_until(
        lambda: next(
            (m for m in emulator.bot_messages(private["id"]) if "Catch-up" in m["text"]), None
        ),
        timeout=60,
    )
    assert answer["message_id"] in links(catchup), catchup["text"]
    assert "opens at 9:00" in catchup["text"]
    # Once: her next message (not away any more) and a redelivered update send nothing more.
    now[0] += 60
    await emulator.send_text(group, ana, "What did I miss?")
    await emulator.redeliver({"update_id": 0, "message": back})
    marker = await emulator.send_text(group, ana, "/catchup off")
    assert (await reply_to(marker))["text"] == "Automatic catch-ups are off for you here."
    assert sum("Catch-up" in m["text"] for m in emulator.bot_messages(private["id"])) == 1
