"""Guest mode through the bot and the emulator: ``@bot`` in a chat the bot is not in."""

from __future__ import annotations

import sqlite3

from playground.api import BotAPIEmulator
from tests.conftest import ENGLISH_ARTICLE, BotFactory
from tests.test_e2e_documents import services  # lexrank and KeyBERT on one bounded executor

GROUP = -1005550001


async def test_a_mention_in_a_chat_the_bot_is_not_in_is_answered_once_and_nothing_is_kept(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot(services=services())
    store = runtime.store
    assert store is not None
    group = emulator.group_chat(GROUP, "Neighbours")
    emulator.set_member_status(GROUP, emulator.bot_user["id"], "left")
    author, asker = emulator.add_user(81, "Ana", "es"), emulator.add_user(82, "Ben", "en")
    article = await emulator.send_text(group, author, ENGLISH_ARTICLE)
    assert not emulator.bot_sees(group, article), "the bot, not a member, never saw it"

    query_id = await emulator.send_guest_message(group, asker, "@CondensaBot", reply_to=article)
    answer = await emulator.wait_until(lambda: emulator.guest_answers.get(query_id))
    assert answer["result"]["title"] == "Summary"
    assert answer["text"].startswith("LexRank · "), answer["text"]
    assert "tram" in answer["text"]

    # "keywords" asks for the key phrases; a redelivered update is not answered again.
    query_id = await emulator.send_guest_message(
        group, asker, "@CondensaBot keywords", reply_to=article
    )
    update = {
        "update_id": emulator.last_update_id,
        "guest_message": emulator.guest_queries[query_id],
    }
    answer = await emulator.wait_until(lambda: emulator.guest_answers.get(query_id))
    assert answer["result"]["title"] == "Key phrases"
    assert "1." in answer["text"] and "transport" in answer["text"].lower()
    await emulator.redeliver(update)
    marker_user = emulator.add_user(83, "Cleo", "en")
    await emulator.send_text(emulator.private_chat(marker_user), marker_user, "/start")
    await emulator.wait_until(lambda: emulator.bot_messages(marker_user["id"]))
    assert len(emulator.calls_to("answerGuestQuery")) == 2, "answered once each"

    # Nothing was sent into the chat, and nothing of it was written down.
    assert not [c for c in emulator.calls if c.params.get("chat_id") == GROUP]
    with sqlite3.connect(store.path) as connection:  # type: ignore[attr-defined]
        for table in ("inbox", "group_keys", "group_messages", "chat_preferences", "outbox"):
            rows = connection.execute(
                f"SELECT count(*) FROM {table} WHERE chat_id = ?", (GROUP,)
            ).fetchone()[0]
            assert rows == 0, f"{table} holds a row of the guest chat"
        update_ids = [r[0] for r in connection.execute("SELECT update_id FROM inbox")]
        assert update["update_id"] not in update_ids


async def test_a_bare_mention_gets_one_sentence_on_how_to_use_it(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=services())
    group = emulator.group_chat(GROUP, "Vecinos")
    emulator.set_member_status(GROUP, emulator.bot_user["id"], "left")
    user = emulator.add_user(84, "Dora", "es")
    query_id = await emulator.send_guest_message(group, user, "@CondensaBot")
    answer = await emulator.wait_until(lambda: emulator.guest_answers.get(query_id))
    assert answer["text"].startswith("Menciónme respondiendo a un mensaje largo")
    assert "@CondensaBot claves" in answer["text"]
