"""End-to-end: the real Application talks HTTP to the Bot API emulator."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from bot.factories import Services
from playground.api import BotAPIEmulator
from playground.parser import parse_html
from services.core.errors import Busy
from services.core.executor import ModelExecutor
from services.core.types import KeywordResult, Summary, SummaryOptions
from services.keywords.extractor import KeyBERTExtractor
from services.summarize.prepared import PreparedText
from services.summarize.service import SummaryService, build_summary_service
from tests.conftest import ENGLISH_ARTICLE, SPANISH_ARTICLE, BotFactory, settled


def real_services(workers: int = 1, queue: int = 4) -> Services:
    executor = ModelExecutor(workers, queue)
    return Services(
        summarizer=build_summary_service(executor, max_chars=100_000, default_method="lexrank"),
        keywords=KeyBERTExtractor(executor),
        executor=executor,
    )


class UnusedKeywords:
    async def extract(self, text: str, top_n: int = 10, language: str = "") -> KeywordResult:
        raise AssertionError("keywords are not used in this test")


def final_replies(emulator: BotAPIEmulator, chat_id: int) -> list[dict[str, Any]]:
    """Bot messages that are not the progress placeholder."""
    return [m for m in emulator.bot_messages(chat_id) if not m["text"].startswith("⏳")]


async def wait_replies(
    emulator: BotAPIEmulator, chat_id: int, count: int = 1
) -> list[dict[str, Any]]:
    return await emulator.wait_until(
        lambda: (r := final_replies(emulator, chat_id)) and len(r) >= count and r
    )


@pytest.fixture
def people(emulator: BotAPIEmulator) -> dict[str, Any]:
    ana = emulator.add_user(10, "Ana", "es")
    bob = emulator.add_user(11, "Bob", "en")
    return {
        "ana": ana,
        "bob": bob,
        "ana_chat": emulator.private_chat(ana),
        "bob_chat": emulator.private_chat(bob),
    }


async def test_start_and_help_are_localized(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    await emulator.send_text(people["bob_chat"], people["bob"], "/start")
    await emulator.send_text(people["ana_chat"], people["ana"], "/help")
    english = (await wait_replies(emulator, people["bob"]["id"]))[0]
    spanish = (await wait_replies(emulator, people["ana"]["id"]))[0]
    assert "turns long text" in english["text"] and "/summary" in english["text"]
    assert "convierte textos largos" in spanish["text"] and "/keywords" in spanish["text"]
    assert any(e["type"] == "bold" for e in english["entities"])


async def test_commands_registered_for_both_languages(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=real_services())
    default = emulator.commands[('{"type": "default"}', "")]
    spanish = emulator.commands[('{"type": "default"}', "es")]
    assert {c["command"] for c in default} >= {"summary", "keywords", "settings", "help", "start"}
    assert {c["command"] for c in spanish} == {c["command"] for c in default}
    assert default[0]["description"] != spanish[0]["description"]


async def test_help_in_group_explains_privacy_mode(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    group = emulator.group_chat(-1001, "Team")
    await emulator.send_text(group, people["bob"], "/help@CondensaBot")
    reply = (await wait_replies(emulator, group["id"]))[0]
    assert "privacy mode" in reply["text"] and "/setprivacy" in reply["text"]


async def test_summary_of_command_text_edits_the_placeholder(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    sent = await emulator.send_text(
        people["bob_chat"], people["bob"], "/summary " + ENGLISH_ARTICLE
    )
    reply = (await wait_replies(emulator, people["bob"]["id"]))[0]
    assert reply["text"].startswith("LexRank · 3 of 12 sentences, 25 %")
    assert reply["_edits"] == 1, "the placeholder is edited into the answer"
    assert reply["reply_to_message"]["message_id"] == sent["message_id"]
    body = reply["text"].split("\n", 1)[1]
    assert all(line in ENGLISH_ARTICLE for line in body.strip().split("\n"))
    assert emulator.calls_to("sendChatAction")[0].params["action"] == "typing"


async def test_summary_of_replied_message_in_spanish(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    chat, ana = people["ana_chat"], people["ana"]
    original = await emulator.send_text(chat, ana, SPANISH_ARTICLE[:500])
    await asyncio.sleep(0)  # the short text gets a hint; the /summary reply is what we check
    await emulator.send_text(chat, ana, "/summary", reply_to=original)
    reply = await emulator.wait_until(
        lambda: next(
            (m for m in final_replies(emulator, ana["id"]) if "frases," in m["text"]), None
        )
    )
    assert reply["text"].startswith("LexRank · ")
    assert " de " in reply["text"].split("\n")[0]


async def test_summary_of_replied_txt_file_in_windows_1252(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    chat, ana = people["ana_chat"], people["ana"]
    data = SPANISH_ARTICLE.encode("cp1252")
    document = await emulator.send_document(chat, ana, data, "noticia.txt", "text/plain")
    await emulator.send_text(chat, ana, "/summary", reply_to=document)
    replies = await emulator.wait_until(
        lambda: [m for m in final_replies(emulator, ana["id"]) if "noticia.txt" in m["text"]]
    )
    assert (
        "línea" in replies[0]["text"] or "años" in replies[0]["text"] or "ó" in replies[0]["text"]
    )


async def test_group_commands_for_other_bots_are_ignored_and_topics_kept(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    forum = emulator.group_chat(-1002, "Forum", is_forum=True)
    bob = people["bob"]
    article = await emulator.send_text(forum, bob, ENGLISH_ARTICLE, thread_id=77)
    await emulator.send_text(forum, bob, "/summary@OtherBot", reply_to=article, thread_id=77)
    await emulator.send_text(forum, bob, "/summary@CondensaBot", reply_to=article, thread_id=77)
    replies = await wait_replies(emulator, forum["id"])
    await settled(emulator)
    assert len(final_replies(emulator, forum["id"])) == 1, "/summary@OtherBot got no answer"
    assert replies[0]["message_thread_id"] == 77
    typing = emulator.calls_to("sendChatAction")
    assert typing and typing[0].params.get("message_thread_id") == 77


async def test_keywords_command(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    await emulator.send_text(people["bob_chat"], people["bob"], "/keywords " + ENGLISH_ARTICLE)
    reply = (await wait_replies(emulator, people["bob"]["id"]))[0]
    lines = reply["text"].split("\n")
    assert lines[0] == "Key phrases"
    phrases = [line.split(". ", 1)[1].rsplit(" (", 1)[0] for line in lines[1:] if line]
    assert len(phrases) == 10 and len(set(phrases)) == 10
    assert any("tram" in p or "transport" in p for p in phrases)


async def test_private_long_text_is_summarized_and_short_text_gets_a_hint(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    chat, bob = people["bob_chat"], people["bob"]
    await emulator.send_text(chat, bob, "hello there")
    hint = (await wait_replies(emulator, bob["id"]))[0]
    assert "600 characters" in hint["text"]
    await emulator.send_text(chat, bob, ENGLISH_ARTICLE)
    replies = await wait_replies(emulator, bob["id"], 2)
    assert replies[1]["text"].startswith("LexRank · 3 of 12")


async def test_forwarded_parts_are_joined_and_answered_once(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    chat, bob = people["bob_chat"], people["bob"]
    author = {"id": 99, "is_bot": False, "first_name": "Reporter"}
    sentences = ENGLISH_ARTICLE.split(". ")
    parts = [". ".join(sentences[i : i + 4]) + "." for i in range(0, 12, 4)]
    for part in parts:
        await emulator.send_text(chat, bob, part, forward_from=author)
    replies = await wait_replies(emulator, bob["id"])
    await settled(emulator)
    assert len(final_replies(emulator, bob["id"])) == 1
    assert replies[0]["text"].startswith("LexRank · 3 of 12"), "all three parts were joined"


async def test_a_command_after_a_forward_is_answered_after_it(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    """A forward waits for its batch window; a /summary sent within that window is answered
    second, as it was sent second."""
    await make_bot(services=real_services(), forward_batch_seconds=30)
    chat, bob = people["bob_chat"], people["bob"]
    author = {"id": 99, "is_bot": False, "first_name": "Reporter"}
    forwarded = await emulator.send_text(chat, bob, ENGLISH_ARTICLE, forward_from=author)
    command = await emulator.send_text(chat, bob, "/summary " + ENGLISH_ARTICLE[:700])
    replies = await wait_replies(emulator, bob["id"], 2)
    await settled(emulator)
    answered = [m["reply_to_message"]["message_id"] for m in final_replies(emulator, bob["id"])]
    assert answered == [forwarded["message_id"], command["message_id"]], replies


async def test_a_flood_of_forwards_is_capped_and_says_how_many_were_left_out(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    runtime = await make_bot(services=real_services(), forward_batch_max_messages=3)
    chat, bob = people["bob_chat"], people["bob"]
    author = {"id": 99, "is_bot": False, "first_name": "Reporter"}
    sentences = ENGLISH_ARTICLE.split(". ")
    parts = [". ".join(sentences[i : i + 4]) + "." for i in range(0, 12, 4)]
    for part in [*parts, "One more line.", "And another one."]:
        await emulator.send_text(chat, bob, part, forward_from=author)
    replies = await wait_replies(emulator, bob["id"])
    text = replies[0]["text"]
    assert text.startswith("LexRank · 3 of 12"), "the first three were summarized"
    assert "… and 2 more forwarded messages, not included: at most 3" in text
    assert runtime.intake is not None
    await emulator.wait_until(lambda: runtime.intake.in_hand == 0)  # all five marked done


async def test_settings_keyboard_round_trip(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    runtime = await make_bot(services=real_services())
    chat, bob = people["bob_chat"], people["bob"]
    await emulator.send_text(chat, bob, "/settings")
    menu = (await wait_replies(emulator, bob["id"]))[0]
    buttons = [b for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    assert any(b["text"] == "✓ medium" for b in buttons)
    short = next(b for b in buttons if b["text"] == "short")
    query_id = await emulator.press_button(chat, bob, menu["message_id"], short["callback_data"])
    await emulator.wait_until(lambda: query_id in emulator.callback_answers)
    assert emulator.callback_answers[query_id]["text"] == "Saved"
    edited = await emulator.wait_until(
        lambda: (m := emulator.messages[(bob["id"], menu["message_id"])]).get("_edits") and m
    )
    assert "Length: short" in edited["text"]
    spanish = next(
        b
        for row in edited["reply_markup"]["inline_keyboard"]
        for b in row
        if b["callback_data"] == "cfg:g:es"
    )
    await emulator.press_button(chat, bob, menu["message_id"], spanish["callback_data"])
    await emulator.wait_until(
        lambda: emulator.messages[(bob["id"], menu["message_id"])]["_edits"] == 2
    )
    await emulator.press_button(chat, bob, menu["message_id"], "cfg:m:embedding")
    await emulator.wait_until(
        lambda: emulator.messages[(bob["id"], menu["message_id"])]["_edits"] == 3
    )
    assert runtime.store is not None
    saved = await runtime.store.get_preferences(bob["id"])
    assert (saved.method, saved.length.value, saved.language) == ("embedding", "short", "es")
    long_text = " ".join([ENGLISH_ARTICLE] * 4)
    await emulator.send_text(chat, bob, "/summary " + long_text)
    reply = await emulator.wait_until(
        lambda: next(
            (m for m in final_replies(emulator, bob["id"]) if m["text"].startswith("Embedding")),
            None,
        )
    )
    assert reply["text"].startswith("Embedding · 2 de 48 frases"), (
        "the chosen method, short length and Spanish UI applied"
    )


async def test_settings_in_group_need_an_admin(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    runtime = await make_bot(services=real_services())
    group = emulator.group_chat(-1003, "Club")
    bob, ana = people["bob"], people["ana"]
    emulator.set_member_status(group["id"], ana["id"], "administrator")
    await emulator.send_text(group, bob, "/settings")
    menu = (await wait_replies(emulator, group["id"]))[0]
    refused = await emulator.press_button(group, bob, menu["message_id"], "cfg:l:long")
    await emulator.wait_until(lambda: refused in emulator.callback_answers)
    assert "admins" in emulator.callback_answers[refused]["text"]
    accepted = await emulator.press_button(group, ana, menu["message_id"], "cfg:l:long")
    await emulator.wait_until(lambda: accepted in emulator.callback_answers)
    assert runtime.store is not None
    assert (await runtime.store.get_preferences(group["id"])).length.value == "long"


class HugeSummarizer:
    """Returns a ~20,000-character summary full of characters HTML must escape."""

    def methods(self) -> list[str]:
        return ["lexrank"]

    async def summarize(self, text: str, options: SummaryOptions) -> Summary:
        sentence = (
            "Profits <rose> & costs fell by 5 % in the A&B <unit> this quarter, said the CFO."
        )
        sentences = [f"{i}: {sentence}" for i in range(240)]
        return Summary("lexrank", "en", sentences, 2000, 200_000)


async def test_a_20000_character_reply_is_split_into_valid_messages(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=Services(summarizer=HugeSummarizer(), keywords=UnusedKeywords()))
    await emulator.send_text(people["bob_chat"], people["bob"], "/summary anything at all")
    replies = await emulator.wait_until(
        lambda: (
            (r := final_replies(emulator, people["bob"]["id"])) and "239:" in r[-1]["text"] and r
        )
    )
    total = sum(len(m["text"]) for m in replies)
    assert len(replies) >= 5 and total >= 19_000
    for message in replies:
        assert len(message["text"]) <= 4096
        parse_html(message["_html"])  # each one is valid HTML on its own
    texts = "\n".join(m["text"] for m in replies)
    assert all(f"{i}: Profits <rose> & costs" in texts for i in range(240)), "nothing lost or cut"
    assert not any(m["text"].split("\n")[-1].endswith(("Profi", "CF")) for m in replies)


async def test_429_on_send_message_is_retried_after_retry_after(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    emulator.inject_fault("sendMessage", 429, retry_after=1)
    await emulator.send_text(people["bob_chat"], people["bob"], "/start")
    reply = (await wait_replies(emulator, people["bob"]["id"]))[0]
    attempts = [c for c in emulator.calls if c.method == "sendMessage"]
    assert not attempts[0].ok and "retry after 1" in attempts[0].error
    assert attempts[1].ok and attempts[1].at - attempts[0].at >= 0.9
    assert "Condensa" in reply["text"]


class BlockingRanker:
    """Holds the only model worker until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def select(self, text: PreparedText, count: int) -> list[int]:
        self.started.set()
        self.release.wait(10)
        return list(range(count))


async def test_busy_model_answers_at_once(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    ranker = BlockingRanker()
    executor = ModelExecutor(workers=1, queue=0)
    services = Services(
        summarizer=SummaryService(executor, {"lexrank": ranker}),
        keywords=UnusedKeywords(),
        executor=executor,
    )
    await make_bot(services=services)
    chat, bob = people["bob_chat"], people["bob"]
    await emulator.send_text(chat, bob, "/summary " + ENGLISH_ARTICLE)
    await asyncio.to_thread(ranker.started.wait, 10)
    # Another chat (one chat's own updates wait their turn, in order).
    ana = people["ana"]
    await emulator.send_text(people["ana_chat"], ana, "/summary " + ENGLISH_ARTICLE)
    busy = await emulator.wait_until(
        lambda: next(
            (m for m in final_replies(emulator, ana["id"]) if "ocupado" in m["text"]), None
        ),
        timeout=5,
    )
    assert "inténtalo de nuevo" in busy["text"]
    ranker.release.set()
    await emulator.wait_until(
        lambda: any(m["text"].startswith("LexRank") for m in final_replies(emulator, bob["id"]))
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("empty", "Send /summary followed by a text"),
        ("short", "already short"),
        ("huge_text", "too long for me"),
        ("pdf", "it seems damaged"),
        ("big_file", "up to 20 MB"),
    ],
)
async def test_bad_input_gets_one_clear_sentence(
    emulator: BotAPIEmulator,
    make_bot: BotFactory,
    people: dict[str, Any],
    kind: str,
    expected: str,
) -> None:
    await make_bot(services=real_services(), max_input_chars=5000)
    chat, bob = people["bob_chat"], people["bob"]
    if kind == "empty":
        await emulator.send_text(chat, bob, "/summary")
    elif kind == "short":
        await emulator.send_text(chat, bob, "/summary One sentence only. And a second.")
    elif kind == "huge_text":
        await emulator.send_text(chat, bob, "/summary " + ENGLISH_ARTICLE * 6)
    elif kind == "pdf":
        await emulator.send_document(
            chat, bob, b"%PDF-1.4 fake", "report.pdf", "application/pdf", caption="/summary"
        )
    else:
        document = await emulator.send_document(
            chat, bob, b"x", "big.txt", "text/plain", declared_size=25 * 1024 * 1024
        )
        await emulator.send_text(chat, bob, "/summary", reply_to=document)
    reply = await emulator.wait_until(
        lambda: next(
            (m for m in final_replies(emulator, bob["id"]) if expected in m["text"]), None
        )
    )
    assert "Traceback" not in reply["text"]
    assert reply["text"].count(". ") <= 2, "one sentence, not a report"


async def test_emulator_rejects_what_telegram_rejects(raw_emulator: BotAPIEmulator) -> None:
    import aiohttp

    emulator = raw_emulator
    base = f"{emulator.url}/bot{emulator.token}"
    chat = emulator.private_chat(emulator.add_user(5, "Eve"))
    async with aiohttp.ClientSession() as session:
        cases: list[dict[str, Any]] = [
            {"chat_id": chat["id"], "text": "x" * 4097},
            {"chat_id": chat["id"], "text": "<b>unclosed", "parse_mode": "HTML"},
            {"chat_id": chat["id"], "text": "a & b", "parse_mode": "HTML"},
            {"chat_id": chat["id"], "text": "<div>x</div>", "parse_mode": "HTML"},
            {
                "chat_id": chat["id"],
                "text": "ok",
                "reply_markup": json.dumps(
                    {"inline_keyboard": [[{"text": "b", "callback_data": "x" * 65}]]}
                ),
            },
        ]
        for data in cases:
            async with session.post(f"{base}/sendMessage", data=data) as response:
                body = await response.json()
                assert response.status == 400 and body["ok"] is False, data
        async with session.post(f"{emulator.url}/botWRONG/getMe") as response:
            assert response.status == 401
    big = emulator.store_file(b"", "huge.bin", declared_size=21 * 1024 * 1024)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/getFile", data={"file_id": big.file_id}) as response,
    ):
        assert (await response.json())["description"] == "Bad Request: file is too big"


def test_busy_error_is_raised_when_the_queue_is_full() -> None:
    async def scenario() -> None:
        executor = ModelExecutor(workers=1, queue=1)
        gate = threading.Event()
        first = asyncio.ensure_future(executor.run(gate.wait, 5))
        second = asyncio.ensure_future(executor.run(gate.wait, 5))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await executor.run(gate.wait, 5)
        gate.set()
        assert await first and await second
        executor.shutdown()

    asyncio.run(scenario())


async def test_a_5xx_from_telegram_reaches_the_error_handler_not_the_user(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    emulator.inject_fault("sendMessage", 502, description="Bad Gateway")
    await emulator.send_text(people["bob_chat"], people["bob"], "/help")
    reply = (await wait_replies(emulator, people["bob"]["id"]))[0]
    assert reply["text"] == "Sorry, something went wrong on my side. Please try again."
    assert "Traceback" not in reply["text"]


@pytest.mark.parametrize("available", [True, False])
async def test_abstractive_method_through_the_bot(
    emulator: BotAPIEmulator,
    make_bot: BotFactory,
    people: dict[str, Any],
    tiny_bart: Any,
    available: bool,
) -> None:
    from services.summarize.seq2seq import GenerationSettings, Seq2SeqSummarizer

    model = str(tiny_bart) if available else "no-such/model"
    executor = ModelExecutor(1, 4)
    backend = Seq2SeqSummarizer({"es": model}, GenerationSettings(num_beams=1, max_new_tokens=8))
    services = Services(
        summarizer=build_summary_service(executor, 100_000, abstractive=backend),
        keywords=UnusedKeywords(),
        executor=executor,
    )
    await make_bot(services=services)
    chat, ana = people["ana_chat"], people["ana"]
    await emulator.send_text(chat, ana, "/settings")
    menu = (await wait_replies(emulator, ana["id"]))[0]
    assert any(
        b["callback_data"] == "cfg:m:abstractive"
        for row in menu["reply_markup"]["inline_keyboard"]
        for b in row
    )
    await emulator.press_button(chat, ana, menu["message_id"], "cfg:m:abstractive")
    await emulator.wait_until(
        lambda: emulator.messages[(ana["id"], menu["message_id"])].get("_edits")
    )
    await emulator.send_text(chat, ana, "/summary " + SPANISH_ARTICLE)
    reply = await emulator.wait_until(
        lambda: next(
            (
                m
                for m in final_replies(emulator, ana["id"])
                if "frases" in m["text"] and "Ajustes" not in m["text"]
            ),
            None,
        )
    )
    if available:
        assert reply["text"].startswith("Abstractive · ")
    else:
        assert reply["text"].startswith("Learned · 3 de 12 frases"), "the default answers"
        assert "El método Abstractive no está disponible en este servidor" in reply["text"]
        assert any(e["type"] == "italic" for e in reply["entities"])


async def test_edits_start_no_new_work(
    emulator: BotAPIEmulator, make_bot: BotFactory, people: dict[str, Any]
) -> None:
    await make_bot(services=real_services())
    chat, bob = people["bob_chat"], people["bob"]
    sent = await emulator.send_text(chat, bob, "/summary " + ENGLISH_ARTICLE)
    await wait_replies(emulator, bob["id"])
    await emulator.edit_text(chat, sent["message_id"], "/summary " + SPANISH_ARTICLE)
    long_text = await emulator.send_text(chat, bob, ENGLISH_ARTICLE)
    await wait_replies(emulator, bob["id"], count=2)
    await emulator.edit_text(chat, long_text["message_id"], ENGLISH_ARTICLE + " Edited.")
    await settled(emulator)  # a batch in its window would still be in hand
    assert len(emulator.bot_messages(bob["id"])) == 2, "an edit answered again"
