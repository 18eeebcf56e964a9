"""Who may use the bot and how much, end to end through the Bot API emulator."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.app import BotRuntime
from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.executor import ModelExecutor
from services.storage.sqlite import SQLiteStore
from services.summarize.service import build_summary_service
from tests.conftest import ENGLISH_ARTICLE, BotFactory, settled
from tests.test_e2e_chat import UnusedKeywords

OPERATOR, FRIEND, STRANGER = 900, 1000, 2000
GROUP = -1004242


def services() -> Services:
    executor = ModelExecutor(1, 8)
    return Services(
        summarizer=build_summary_service(executor, max_chars=100_000, default_method="lexrank"),
        keywords=UnusedKeywords(),
        executor=executor,
    )


class Clock:
    """Unix time the test moves by hand (quotas reset at 00:00 UTC)."""

    def __init__(self, moment: dt.datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now


def texts(emulator: BotAPIEmulator, chat_id: int) -> list[str]:
    return [m["text"] for m in emulator.bot_messages(chat_id) if "text" in m]


async def settle(emulator: BotAPIEmulator, chat_id: int, count: int) -> list[str]:
    """Wait until ``count`` final bot messages are in the chat and the bot finished every
    update so far (so no further message is coming)."""
    await emulator.wait_until(
        lambda: len([t for t in texts(emulator, chat_id) if not t.startswith("⏳")]) >= count,
        timeout=60,
    )
    await settled(emulator)
    return [t for t in texts(emulator, chat_id) if not t.startswith("⏳")]


def store_of(runtime: BotRuntime) -> SQLiteStore:
    assert runtime.store is not None
    return runtime.store


async def test_a_stranger_gets_one_polite_sentence_a_day_and_nothing_is_processed(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot(services(), allowed_users=f"{FRIEND}", admin_users=f"{OPERATOR}")
    friend = emulator.add_user(FRIEND, "Friend", "en")
    stranger = emulator.add_user(STRANGER, "Extraño", "es")
    stranger_chat = emulator.private_chat(stranger)
    for text in ("/start", "/summary " + ENGLISH_ARTICLE, ENGLISH_ARTICLE):
        await emulator.send_text(stranger_chat, stranger, text)
    replies = await settle(emulator, STRANGER, 1)
    assert len(replies) == 1, replies
    assert replies[0].startswith("Este bot es privado")
    assert not emulator.calls_to("sendChatAction"), "no work started for the stranger"

    await emulator.send_text(emulator.private_chat(friend), friend, "/summary " + ENGLISH_ARTICLE)
    answer = (await settle(emulator, FRIEND, 1))[0]
    assert answer.startswith("LexRank ·")
    stats = await store_of(runtime).usage_stats([dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")])
    assert (stats.users, stats.requests, stats.refused) == (1, 1, 3)


async def test_a_group_added_by_a_stranger_is_left_and_one_added_by_a_friend_is_served(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services(), allowed_users=f"{FRIEND}")
    friend = emulator.add_user(FRIEND, "Friend", "en")
    stranger = emulator.add_user(STRANGER, "Stranger", "en")
    foreign = emulator.group_chat(GROUP, "Strangers")
    await emulator.add_bot(foreign, stranger)
    await emulator.wait_until(lambda: emulator.calls_to("leaveChat"), timeout=30)
    assert texts(emulator, GROUP) == [
        "This group is not on this bot's list, so I'm leaving. Ask the bot's operator to allow it."
    ]
    await emulator.send_text(foreign, stranger, "/summary " + ENGLISH_ARTICLE)
    await settled(emulator)
    assert len(texts(emulator, GROUP)) == 1, "a group the bot left gets nothing more"

    friends = emulator.group_chat(GROUP - 1, "Friends")
    await emulator.add_bot(friends, friend)
    await settled(emulator)
    await emulator.send_text(friends, stranger, "/summary " + ENGLISH_ARTICLE)
    answer = (await settle(emulator, GROUP - 1, 1))[0]
    assert answer.startswith("LexRank ·"), "every member may use an allowed group"
    assert len(emulator.calls_to("leaveChat")) == 1


async def test_a_quota_is_reached_then_resets_at_midnight_utc(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    clock = Clock(dt.datetime(2026, 11, 30, 23, 57, tzinfo=dt.UTC))
    await make_bot(services(), clock=clock, quota_user_requests=2)
    user = emulator.add_user(FRIEND, "Ana", "en")
    chat = emulator.private_chat(user)
    for expected in (1, 2):
        await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
        await settle(emulator, FRIEND, expected)
    await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    replies = await settle(emulator, FRIEND, 3)
    assert replies[-1] == (
        "You have used all of today's requests. The quota resets at 00:00 UTC, in 3 min."
    )
    await emulator.send_text(chat, user, "/start")  # not a request: still answered
    assert "Condensa" in (await settle(emulator, FRIEND, 4))[-1]

    clock.now += 4 * 60  # 00:01 UTC: a new day
    await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    assert (await settle(emulator, FRIEND, 5))[-1].startswith("LexRank ·")


async def test_operator_commands_are_refused_to_others_and_audited(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot(services(), allowed_users=f"{FRIEND}", admin_users=f"{OPERATOR}")
    operator = emulator.add_user(OPERATOR, "Op", "en")
    friend = emulator.add_user(FRIEND, "Friend", "en")
    stranger = emulator.add_user(STRANGER, "Stranger", "en")
    op_chat, friend_chat = emulator.private_chat(operator), emulator.private_chat(friend)
    stranger_chat = emulator.private_chat(stranger)

    await emulator.send_text(friend_chat, friend, "/stats")
    assert (await settle(emulator, FRIEND, 1))[-1] == "This command is for the bot's operator."
    await emulator.send_text(friend_chat, friend, f"/allow {STRANGER}")
    assert (await settle(emulator, FRIEND, 2))[-1] == "This command is for the bot's operator."

    await emulator.send_text(op_chat, operator, f"/allow {STRANGER}")
    assert (await settle(emulator, OPERATOR, 1))[-1] == f"{STRANGER} may use the bot now."
    await emulator.send_text(stranger_chat, stranger, "/summary " + ENGLISH_ARTICLE)
    assert (await settle(emulator, STRANGER, 1))[-1].startswith("LexRank ·")

    await emulator.send_text(op_chat, operator, f"/deny {FRIEND}")
    await settle(emulator, OPERATOR, 2)
    await emulator.send_text(friend_chat, friend, "/summary " + ENGLISH_ARTICLE)
    assert (await settle(emulator, FRIEND, 3))[-1].startswith("This bot is private")

    await emulator.send_text(op_chat, operator, f"/quota {STRANGER} 1")
    assert (await settle(emulator, OPERATOR, 3))[-1] == (
        f"User {STRANGER} may now make 1 requests a day."
    )
    await emulator.send_text(stranger_chat, stranger, "/summary " + ENGLISH_ARTICLE)
    assert (await settle(emulator, STRANGER, 2))[-1].startswith("You have used all")

    await emulator.send_text(op_chat, operator, "/stats")
    stats = (await settle(emulator, OPERATOR, 4))[-1]
    assert stats.startswith("Today (UTC): 1 user, 0 groups; 1 requests")
    assert f"Largest users: {STRANGER} (1)" in stats
    audit = await store_of(runtime).audit_log()
    assert [(a[1], a[2], a[3], a[4]) for a in audit] == [
        (OPERATOR, "quota", str(STRANGER), "1"),
        (OPERATOR, "deny", str(FRIEND), ""),
        (OPERATOR, "allow", str(STRANGER), ""),
    ]


async def test_counters_survive_a_restart(emulator: BotAPIEmulator, make_bot: BotFactory) -> None:
    first = await make_bot(services(), quota_user_requests=1)
    user: dict[str, Any] = emulator.add_user(FRIEND, "Ana", "en")
    chat = emulator.private_chat(user)
    await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    await settle(emulator, FRIEND, 1)
    await first.stop()
    emulator.polling_started.clear()
    await make_bot(services(), quota_user_requests=1)
    await emulator.send_text(chat, user, "/summary " + ENGLISH_ARTICLE)
    assert (await settle(emulator, FRIEND, 2))[-1].startswith("You have used all")


async def test_a_denied_member_is_ignored_but_the_group_keeps_the_bot(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot(services(), admin_users=f"{OPERATOR}")
    await store_of(runtime).set_access_rule(str(STRANGER), False, OPERATOR)
    friend = emulator.add_user(FRIEND, "Friend", "en")
    stranger = emulator.add_user(STRANGER, "Troll", "en")
    group = emulator.group_chat(GROUP, "Open group")
    await emulator.send_text(group, stranger, "/summary " + ENGLISH_ARTICLE)
    await settled(emulator)
    assert texts(emulator, GROUP) == [] and not emulator.calls_to("leaveChat")
    await emulator.send_text(group, friend, "/summary " + ENGLISH_ARTICLE)
    assert (await settle(emulator, GROUP, 1))[-1].startswith("LexRank ·")


async def test_inline_and_guest_requests_count_against_the_users_own_quota(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    """Work asked for outside the bot's chats counts for the user (and nothing for the chat it
    came from); past the quota, inline results say when it resets and a guest answer too."""
    from services.keywords.extractor import KeyBERTExtractor

    clock = Clock(dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC))
    executor = ModelExecutor(1, 8)
    with_keywords = Services(
        summarizer=build_summary_service(executor, max_chars=100_000, default_method="lexrank"),
        keywords=KeyBERTExtractor(executor),
        executor=executor,
    )
    runtime = await make_bot(with_keywords, clock=clock, quota_user_requests=2)
    store = store_of(runtime)
    user = emulator.add_user(FRIEND, "Ana", "en")
    query_id = await emulator.send_inline_query(user, ENGLISH_ARTICLE[:250], chat_type="group")
    assert (await emulator.wait_until(lambda: emulator.inline_answers.get(query_id)))["shown"]
    query_id = await emulator.send_inline_query(user, ENGLISH_ARTICLE[:250], chat_type="group")
    await emulator.wait_until(lambda: emulator.inline_answers.get(query_id))  # from memory

    elsewhere = emulator.group_chat(GROUP, "Neighbours")
    emulator.set_member_status(GROUP, emulator.bot_user["id"], "left")
    article = await emulator.send_text(
        elsewhere, emulator.add_user(3000, "Bo", "en"), ENGLISH_ARTICLE
    )
    guest = await emulator.send_guest_message(elsewhere, user, "@CondensaBot", reply_to=article)
    assert (
        "LexRank" in (await emulator.wait_until(lambda: emulator.guest_answers.get(guest)))["text"]
    )
    used = await store.usage("2026-11-30", "user", FRIEND)
    assert used.requests == 2 and used.chars >= len(ENGLISH_ARTICLE)
    assert (await store.usage("2026-11-30", "chat", GROUP)).requests == 0

    guest = await emulator.send_guest_message(
        elsewhere, user, "@CondensaBot keywords", reply_to=article
    )
    answer = await emulator.wait_until(lambda: emulator.guest_answers.get(guest))
    assert answer["text"] == (
        "You have used all of today's requests. The quota resets at 00:00 UTC, in 2 h 0 min."
    )
    query_id = await emulator.send_inline_query(user, "https://example.org/new", chat_type="group")
    refused = await emulator.wait_until(lambda: emulator.inline_answers.get(query_id))
    assert refused["shown"] == [] and refused["button"]["text"].startswith("Today's quota")
    assert (await store.usage("2026-11-30", "user", FRIEND)).refused == 2
