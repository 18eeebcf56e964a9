"""Group digests end to end: real KeyBERT/MiniLM digests through the Bot API emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import re
import time
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.app import BotRuntime
from bot.factories import Services, learned_scorer
from handlers.deps import LocalCoordination
from playground.api import BotAPIEmulator
from services.core.executor import ModelExecutor
from services.digest.ask import HistorySearchService
from services.digest.service import DigestService
from services.keywords.extractor import KeyBERTExtractor
from services.storage.sqlite import SQLiteStore
from services.summarize.service import build_summary_service
from tests.chat_samples import ALLOTMENT, alternating, two_topic_chat
from tests.conftest import BotFactory

GROUP_ID = -1009876543210
LINK_RE = re.compile(r"^https://t\.me/c/9876543210/(\d+)$")


def digest_services() -> Services:
    executor = ModelExecutor(1, 4)
    keywords = KeyBERTExtractor(executor)
    return Services(
        summarizer=build_summary_service(executor, max_chars=100_000, default_method="lexrank"),
        keywords=keywords,
        executor=executor,
        digests=DigestService(executor, keywords.backend, keywords.cache, scorer=learned_scorer()),
        history=HistorySearchService(executor, keywords.backend),
    )


@pytest.fixture
def group(emulator: BotAPIEmulator) -> dict[str, Any]:
    chat = emulator.group_chat(GROUP_ID, "Neighbours")
    for user_id, name in ((101, "Ana"), (102, "Bob"), (103, "Carla")):
        emulator.add_user(user_id, name, "en")
    emulator.set_member_status(GROUP_ID, 101, "creator")
    emulator.set_member_status(GROUP_ID, emulator.bot_user["id"], "administrator")
    return chat


def user(emulator: BotAPIEmulator, name: str) -> dict[str, Any]:
    return next(u for u in emulator.users.values() if u["first_name"] == name)


def store_of(runtime: BotRuntime) -> SQLiteStore:
    assert runtime.store is not None
    return runtime.store


def texts_after(emulator: BotAPIEmulator, chat_id: int, after: int) -> list[dict[str, Any]]:
    return [m for m in emulator.bot_messages(chat_id) if m["message_id"] > after and "text" in m]


def photos_after(emulator: BotAPIEmulator, chat_id: int, after: int) -> list[dict[str, Any]]:
    return [m for m in emulator.bot_messages(chat_id) if m["message_id"] > after and "photo" in m]


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    """Wait until the async ``check`` is true (the bot stores messages in the background)."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the condition never became true"
        await asyncio.sleep(0.05)


async def command(
    emulator: BotAPIEmulator, chat: dict[str, Any], author: str, text: str
) -> dict[str, Any]:
    """Send ``text`` and return the bot's first reply to it."""
    sent = await emulator.send_text(chat, user(emulator, author), text)
    return (
        await emulator.wait_until(
            lambda: [
                m
                for m in texts_after(emulator, chat["id"], sent["message_id"])
                if m.get("reply_to_message", {}).get("message_id") == sent["message_id"]
            ],
            timeout=60,
        )
    )[0]


async def post_conversation(
    emulator: BotAPIEmulator, runtime: BotRuntime, chat: dict[str, Any], count: int = 60
) -> list[dict[str, Any]]:
    before = len(await store_of(runtime).messages(chat["id"]))
    sent = [
        await emulator.send_text(chat, user(emulator, author), text)
        for author, text in two_topic_chat(count)
    ]
    store = store_of(runtime)

    async def all_stored() -> bool:
        return len(await store.messages(chat["id"])) >= before + count

    await eventually(all_stored)
    assert len(await store.messages(chat["id"])) == before + count
    return sent


async def ask_digest(
    emulator: BotAPIEmulator, chat: dict[str, Any], text: str = "/digest"
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """Send a /digest command; returns (all digest text, its entities, the photo message)."""
    sent = await emulator.send_text(chat, user(emulator, "Bob"), text)
    photo = (
        await emulator.wait_until(
            lambda: photos_after(emulator, chat["id"], sent["message_id"]), timeout=90
        )
    )[0]
    replies = texts_after(emulator, chat["id"], sent["message_id"])
    entities = [e for m in replies for e in m.get("entities", [])]
    return "\n".join(m["text"] for m in replies), entities, photo


async def test_digest_names_both_topics_links_quotes_and_sends_a_word_cloud(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    runtime = await make_bot(services=digest_services())
    reply = await command(emulator, group, "Ana", "/digest_on")
    assert "Digests are on" in reply["text"] and "privacy" not in reply["text"]
    assert "reactions" not in reply["text"], "an admin bot sees reactions: nothing to explain"
    sent = await post_conversation(emulator, runtime, group)

    text, entities, photo = await ask_digest(emulator, group)

    assert "60 messages from 3 people" in text
    lowered = text.lower()
    assert "chess" in lowered and "tournament" in lowered
    assert "tomato" in lowered and "garden" in lowered
    links = [e["url"] for e in entities if e["type"] == "text_link"]
    assert len(links) >= 2
    by_id = {m["message_id"]: m for m in sent}
    for link in links:
        match = LINK_RE.match(link)
        assert match, link
        original = by_id[int(match.group(1))]
        # Each linked sentence is one of the linked message's own sentences.
        sentences = re.split(r"(?<=[.?!])\s+", original["text"])
        assert any(sentence[:40] in text for sentence in sentences), original["text"]
    assert photo["caption"] == "Key phrases of the digest"
    stored_photo = emulator.files[photo["photo"][-1]["file_id"]]
    assert stored_photo.data.startswith(b"\x89PNG")
    assert all(
        emulator.messages[(GROUP_ID, m["message_id"])]["_link_preview_disabled"]
        for m in texts_after(emulator, GROUP_ID, sent[-1]["message_id"])
    )

    # "/digest" again = since the previous one: nothing new yet.
    reply = await command(emulator, group, "Bob", "/digest")
    assert "too few" in reply["text"]


async def test_edits_update_and_optout_forget_change_the_next_digest(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    runtime = await make_bot(services=digest_services())
    await command(emulator, group, "Ana", "/digest_on")
    sent = await post_conversation(emulator, runtime, group)
    store = store_of(runtime)

    first = sent[0]["message_id"]
    await emulator.edit_text(group, first, "Edited: the beehive needs a new queen.")

    async def edited() -> bool:
        rows = {m.message_id: m.text for m in await store.messages(GROUP_ID)}
        return rows[first] == "Edited: the beehive needs a new queen."

    await eventually(edited)

    reply = await command(emulator, group, "Carla", "/optout")
    assert "deleted 20" in reply["text"]
    await emulator.send_text(group, user(emulator, "Carla"), "The chess clock batteries are dead.")
    reply = await command(emulator, group, "Bob", "/forget")
    assert "deleted the 20" in reply["text"]
    authors = {m.author for m in await store.messages(GROUP_ID)}
    assert authors == {"Ana"}

    text, _, _ = await ask_digest(emulator, group, "/digest 100")
    assert "20 messages from 1 person " in text

    reply = await command(emulator, group, "Carla", "/optin")
    assert "again" in reply["text"]


async def test_removing_the_bot_wipes_the_group(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    runtime = await make_bot(services=digest_services())
    await command(emulator, group, "Ana", "/digest_on")
    await post_conversation(emulator, runtime, group, count=10)
    store = store_of(runtime)
    await emulator.remove_bot(group, user(emulator, "Ana"))

    async def wiped() -> bool:
        return not await store.messages(GROUP_ID)

    await eventually(wiped)
    assert not (await store.digest_settings(GROUP_ID)).enabled


async def test_only_admins_switch_digests_and_privacy_mode_is_explained(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    await make_bot(services=digest_services())
    reply = await command(emulator, group, "Bob", "/digest_on")
    assert reply["text"] == "Only group admins can do this."
    reply = await command(emulator, group, "Bob", "/digest")
    assert "/digest_on" in reply["text"]
    emulator.set_member_status(GROUP_ID, emulator.bot_user["id"], "member")
    reply = await command(emulator, group, "Ana", "/digest_on")
    assert "privacy mode" in reply["text"]
    assert "reactions only if I am an admin" in reply["text"]
    # With privacy mode on, ordinary messages never reach the bot.
    await emulator.send_text(group, user(emulator, "Bob"), "Nobody can read this one.")
    reply = await command(emulator, group, "Bob", "/digest 10")
    assert "too few" in reply["text"]
    reply = await command(emulator, group, "Ana", "/digest sometime")
    assert "/digest 6h" in reply["text"]


def export_zip(messages: list[tuple[str, str]], chat_id: int = 9876543210) -> bytes:
    start = 1_700_000_000
    document = {
        "name": "Neighbours",
        "type": "private_supergroup",
        "id": chat_id,
        "messages": [
            {"id": 1, "type": "service", "date_unixtime": str(start), "action": "create_group"}
        ]
        + [
            {
                "id": 1000 + i,
                "type": "message",
                "date": "2023-11-14T22:13:20",
                "date_unixtime": str(start + 60 * i),
                "from": author,
                "from_id": f"user{100 + i % 3 + 1}",
                "text": [text[:20], {"type": "bold", "text": text[20:]}],
            }
            for i, (author, text) in enumerate(messages)
        ],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ChatExport_2023-11-15/result.json", json.dumps(document))
        archive.writestr("ChatExport_2023-11-15/photos/photo_1.jpg", b"\xff\xd8\xff")
    return buffer.getvalue()


async def test_an_admin_imports_a_desktop_export_and_the_digest_covers_it(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    runtime = await make_bot(services=digest_services())
    await command(emulator, group, "Ana", "/digest_on")
    data = export_zip(two_topic_chat(40))

    refused = await emulator.send_document(
        group, user(emulator, "Bob"), data, "export.zip", caption="/import"
    )
    reply = await emulator.wait_until(
        lambda: texts_after(emulator, GROUP_ID, refused["message_id"]), timeout=30
    )
    assert reply[0]["text"] == "Only group admins can do this."

    bad = await emulator.send_document(
        group, user(emulator, "Ana"), b'{"hello": 1}', "result.json", caption="/import"
    )
    reply = await emulator.wait_until(
        lambda: texts_after(emulator, GROUP_ID, bad["message_id"]), timeout=30
    )
    assert "not a Telegram Desktop chat export" in reply[0]["text"]

    # In private, the export's own chat id says which group it is.
    ana = user(emulator, "Ana")
    private = emulator.private_chat(ana)
    sent = await emulator.send_document(private, ana, data, "export.zip", caption="/import")
    reply = await emulator.wait_until(
        lambda: texts_after(emulator, private["id"], sent["message_id"]), timeout=30
    )
    assert reply[0]["text"] == "Imported 40 messages of “Neighbours” for digests."
    stored = await store_of(runtime).messages(GROUP_ID)
    assert len(stored) == 40 and stored[0].message_id == 1000
    assert stored[0].text == two_topic_chat(1)[0][1]  # entity parts joined back

    text, entities, _ = await ask_digest(emulator, group, "/digest 500")
    assert "40 messages" in text and "chess" in text.lower()
    ids = [int(LINK_RE.match(e["url"]).group(1)) for e in entities if e["type"] == "text_link"]  # type: ignore[union-attr]
    assert ids and all(1000 <= i < 1040 for i in ids)


async def test_a_scheduled_digest_fires_and_survives_a_restart(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    runtime = await make_bot(services=digest_services())
    await command(emulator, group, "Ana", "/digest_on")
    await post_conversation(emulator, runtime, group, count=30)
    reply = await command(emulator, group, "Bob", "/schedule 21:00 Europe/Madrid")
    assert reply["text"] == "Only group admins can do this."
    reply = await command(emulator, group, "Ana", "/schedule 25:00 Mars/Olympus")
    assert "/schedule off" in reply["text"]

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)).strftime("%H:%M:%S")
    reply = await command(emulator, group, "Ana", f"/schedule {soon} UTC")
    assert reply["text"] == f"Daily digest at {soon} (UTC)."
    last = reply["message_id"]
    photo = await emulator.wait_until(lambda: photos_after(emulator, GROUP_ID, last), timeout=60)
    assert photo
    digest_text = "\n".join(m["text"] for m in texts_after(emulator, GROUP_ID, last))
    assert "30 messages from 3 people" in digest_text

    await runtime.stop()
    restarted = await make_bot(services=digest_services())
    assert restarted.application.job_queue is not None
    jobs = restarted.application.job_queue.get_jobs_by_name(f"digest:{GROUP_ID}")
    assert len(jobs) == 1
    reply = await command(emulator, group, "Ana", "/schedule off")
    assert reply["text"] == "The daily digest is off."
    assert not restarted.application.job_queue.get_jobs_by_name(f"digest:{GROUP_ID}")


async def test_a_scheduled_digest_whose_first_try_fails_is_delivered_once(
    emulator: BotAPIEmulator,
    make_bot: BotFactory,
    group: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import handlers.digest

    monkeypatch.setattr(handlers.digest, "SCHEDULE_RETRY_SECONDS", 1.0)
    runtime = await make_bot(services=digest_services())
    await command(emulator, group, "Ana", "/digest_on")
    await post_conversation(emulator, runtime, group, count=30)
    emulator.inject_fault("getChat", 502, description="Bad Gateway")  # the first try fails
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)).strftime("%H:%M:%S")
    reply = await command(emulator, group, "Ana", f"/schedule {soon} UTC")
    last = reply["message_id"]
    await emulator.wait_until(lambda: photos_after(emulator, GROUP_ID, last), timeout=60)
    failed = [c for c in emulator.calls if c.method == "getChat" and not c.ok]
    assert len(failed) == 1, "the digest was sent by the retry after the failed try"
    texts = [m["text"] for m in texts_after(emulator, GROUP_ID, last)]
    assert sum("30 messages from 3 people" in text for text in texts) == 1
    assert not any("busy" in text for text in texts)
    # A further firing the same day (a retry, another worker) finds it sent and stays quiet.
    job_queue = runtime.application.job_queue
    assert job_queue is not None
    daily = job_queue.get_jobs_by_name(f"digest:{GROUP_ID}")[0].callback
    fired = asyncio.Event()

    async def fire_again(context: Any) -> None:
        await daily(context)
        fired.set()

    calls = len(emulator.calls)
    job_queue.run_once(fire_again, 0, chat_id=GROUP_ID, data=(soon, "UTC"))
    await asyncio.wait_for(fired.wait(), 10)
    assert not [c for c in emulator.calls[calls:] if c.method in ("sendMessage", "sendPhoto")]
    # Even once the once-only keys are gone (Redis restarted without persistence), a firing
    # posts nothing: the digest covers what is new since the previous one, a mark kept in the
    # database, and nothing is.
    assert runtime.summary_handlers is not None
    coordination = runtime.summary_handlers._deps.coordination
    assert isinstance(coordination, LocalCoordination)
    coordination._until.clear()
    fired.clear()
    job_queue.run_once(fire_again, 0, chat_id=GROUP_ID, data=(soon, "UTC"))
    await asyncio.wait_for(fired.wait(), 10)
    assert not [c for c in emulator.calls[calls:] if c.method in ("sendMessage", "sendPhoto")]


async def test_digest_narrative_ranges_and_links_between_two_messages(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    runtime = await make_bot(services=digest_services())
    await command(emulator, group, "Ana", "/digest_on")
    sent = await post_conversation(emulator, runtime, group, count=40)

    text, _, _ = await ask_digest(emulator, group, "/digest today")
    assert "40 messages from 3 people" in text and "In short:" in text
    assert "with Ana" in text or "with Bob" in text or "with Carla" in text

    reply = await command(emulator, group, "Bob", "/digest ayer")
    assert "too few" in reply["text"]

    first, last = sent[5]["message_id"], sent[24]["message_id"]
    links = f"https://t.me/c/9876543210/{last} https://t.me/c/9876543210/{first}"
    text, _, _ = await ask_digest(emulator, group, f"/digest {links}")
    assert "20 messages from 3 people" in text

    reply = await command(emulator, group, "Bob", "/digest next blursday")
    assert "/digest yesterday" in reply["text"]


async def test_ask_answers_from_the_group_history_with_links_or_says_nothing(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    runtime = await make_bot(services=digest_services())
    await command(emulator, group, "Ana", "/digest_on")
    sent = await post_conversation(emulator, runtime, group, count=40)
    by_id = {m["message_id"]: m for m in sent}

    reply = await command(emulator, group, "Carla", "/ask when does the chess tournament start?")
    assert reply["text"].startswith("From the chat")
    links = [e["url"] for e in reply.get("entities", []) if e["type"] == "text_link"]
    assert links
    linked = [by_id[int(LINK_RE.match(link).group(1))]["text"] for link in links]  # type: ignore[union-attr]
    assert any("Friday" in text for text in linked)
    assert all("chess" in text.lower() or "tournament" in text.lower() for text in linked)

    reply = await command(emulator, group, "Carla", "/ask what is the capital of Mongolia?")
    assert reply["text"] == "I found nothing about that in the last 7 days."


async def test_forum_digests_cover_one_thread_or_one_per_thread(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    forum = emulator.group_chat(GROUP_ID, "Forum", is_forum=True)
    for user_id, name in ((101, "Ana"), (102, "Bob"), (103, "Carla")):
        emulator.add_user(user_id, name, "en")
    emulator.set_member_status(GROUP_ID, 101, "creator")
    emulator.set_member_status(GROUP_ID, emulator.bot_user["id"], "administrator")
    runtime = await make_bot(services=digest_services())
    await command(emulator, forum, "Ana", "/digest_on")
    lines = two_topic_chat(40)
    for number, (author, text) in enumerate(lines):
        thread = 5 if number % 2 == 0 else 7  # the garden in thread 5, chess in thread 7
        await emulator.send_text(forum, user(emulator, author), text, thread_id=thread)
    store = store_of(runtime)

    async def all_stored() -> bool:
        return len(await store.messages(GROUP_ID)) >= 40

    await eventually(all_stored)
    assert len(await store.messages(GROUP_ID, thread_id=5)) == 20

    sent = await emulator.send_text(forum, user(emulator, "Bob"), "/digest", thread_id=7)
    await emulator.wait_until(lambda: photos_after(emulator, GROUP_ID, sent["message_id"]), 90)
    replies = texts_after(emulator, GROUP_ID, sent["message_id"])
    text = "\n".join(m["text"] for m in replies)
    assert "20 messages from" in text and "chess" in text.lower() and "tomato" not in text.lower()
    assert all(m.get("message_thread_id") == 7 for m in replies)

    sent = await emulator.send_text(forum, user(emulator, "Bob"), "/digest threads", thread_id=7)

    def two_clouds() -> list[dict[str, Any]]:
        photos = photos_after(emulator, GROUP_ID, sent["message_id"])
        return photos if len(photos) == 2 else []

    await emulator.wait_until(two_clouds, 120)
    replies = texts_after(emulator, GROUP_ID, sent["message_id"])
    by_thread = {m.get("message_thread_id") for m in replies if m["text"].startswith("Thread")}
    assert by_thread == {5, 7}


async def test_ask_in_private_searches_the_conversation_just_forwarded(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=digest_services())
    bob = emulator.add_user(102, "Bob", "en")
    chat = emulator.private_chat(bob)
    authors = {
        name: {"id": 200 + n, "is_bot": False, "first_name": name}
        for n, name in enumerate(("Ana", "Carla", "Dan"))
    }
    for author, text in two_topic_chat(12):
        origin = authors.get(author, authors["Dan"])
        await emulator.send_text(chat, bob, text, forward_from=origin)
    await emulator.wait_until(
        lambda: [m for m in texts_after(emulator, chat["id"], 0) if "LexRank" in m["text"]], 60
    )

    sent = await emulator.send_text(chat, bob, "/ask who has the key to the garden shed?")
    reply = (
        await emulator.wait_until(
            lambda: texts_after(emulator, chat["id"], sent["message_id"]), 60
        )
    )[0]
    assert reply["text"].startswith("From the chat")
    assert "garden shed" in reply["text"]
    assert any(f"{name}: " in reply["text"] for name in authors)

    sent = await emulator.send_text(chat, bob, "/ask what is the capital of Mongolia?")
    reply = (
        await emulator.wait_until(
            lambda: texts_after(emulator, chat["id"], sent["message_id"]), 60
        )
    )[0]
    assert reply["text"] == "I found nothing about that in the conversation you forwarded."


async def test_reactions_and_a_pin_bring_a_left_out_message_into_the_digest(
    emulator: BotAPIEmulator, make_bot: BotFactory, group: dict[str, Any]
) -> None:
    """Members' reactions (``message_reaction``, which the bot must ask for), Telegram's
    anonymous totals (``message_reaction_count``) and a pin reach the stored message, and the
    next digest quotes the message the first one left out."""
    from tests.test_digest_narrative import TRAMS

    runtime = await make_bot(services=digest_services())
    await command(emulator, group, "Ana", "/digest_on")
    sent = [
        await emulator.send_text(group, user(emulator, name), text)
        for name, text in alternating(TRAMS, ALLOTMENT)
    ]
    store = store_of(runtime)

    async def stored() -> bool:
        return len(await store.messages(GROUP_ID)) == len(sent)

    await eventually(stored)
    text, entities, _ = await ask_digest(emulator, group, "/digest 100")
    quoted = {int(LINK_RE.match(e["url"]).group(1)) for e in entities if e["type"] == "text_link"}  # type: ignore[union-attr]
    chosen = next(m for m in sent if m["message_id"] not in quoted)

    for name in ("Ana", "Bob", "Carla"):
        await emulator.react(group, user(emulator, name), chosen["message_id"], "🔥")
    await emulator.react(group, user(emulator, "Bob"), chosen["message_id"], "🔥", remove=True)

    async def counted(total: int, pinned: bool = False) -> bool:
        rows = {m.message_id: m for m in await store.messages(GROUP_ID)}
        row = rows[chosen["message_id"]]
        return row.reactions == total and row.pinned == pinned

    await eventually(lambda: counted(2))
    await emulator.count_reactions(group, chosen["message_id"], {"🔥": 7, "👍": 2})
    await eventually(lambda: counted(9))
    await emulator.pin(group, user(emulator, "Ana"), chosen["message_id"])
    await eventually(lambda: counted(9, pinned=True))
    assert "message_reaction" in emulator.allowed_updates

    text, entities, _ = await ask_digest(emulator, group, "/digest 100")
    quoted = {int(LINK_RE.match(e["url"]).group(1)) for e in entities if e["type"] == "text_link"}  # type: ignore[union-attr]
    assert chosen["message_id"] in quoted, text
    assert chosen["text"][:40] in text

    # A document forwarded in is kept (its caption) and marked as such.
    shared = await emulator.send_document(
        group,
        user(emulator, "Bob"),
        b"%PDF-1.4 minutes",
        "minutes.pdf",
        "application/pdf",
        caption="The allotment rules for next season, as the committee sent them.",
        forward_from={"id": 4242, "is_bot": False, "first_name": "Committee"},
    )

    async def kept_as_shared() -> bool:
        rows = {m.message_id: m for m in await store.messages(GROUP_ID)}
        found = rows.get(shared["message_id"])
        return found is not None and found.shared_document

    await eventually(kept_as_shared)
