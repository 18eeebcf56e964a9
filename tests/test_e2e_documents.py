"""Documents through the bot: a PDF, a DOCX with /keywords, and refusals in one sentence."""

from __future__ import annotations

from typing import Any

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.executor import ModelExecutor
from services.keywords.extractor import KeyBERTExtractor
from services.summarize.service import build_summary_service
from tests import document_files as files
from tests.conftest import BotFactory


def services() -> Services:
    executor = ModelExecutor(1, 4)
    return Services(
        summarizer=build_summary_service(executor, 100_000, default_method="lexrank"),
        keywords=KeyBERTExtractor(executor),
        executor=executor,
    )


def answer(emulator: BotAPIEmulator, chat_id: int, needle: str) -> Any:
    return lambda: next(
        (
            m
            for m in emulator.bot_messages(chat_id)
            if needle in m["text"] and not m["text"].startswith("⏳")
        ),
        None,
    )


async def test_a_pdf_sent_in_private_is_summarized_with_its_size(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=services())
    user = emulator.add_user(40, "Flo", "en")
    chat = emulator.private_chat(user)
    await emulator.send_document(
        chat, user, files.pdf_with_text(4), "report.pdf", "application/pdf"
    )
    reply = await emulator.wait_until(answer(emulator, chat["id"], "report.pdf"), timeout=30)
    first_line = reply["text"].split("\n")[0]
    assert first_line.startswith("report.pdf · 4 pages · ") and first_line.endswith(" words")
    assert "LexRank · " in reply["text"] and "tram" in reply["text"]


async def test_keywords_of_a_replied_docx_in_spanish(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=services())
    user = emulator.add_user(41, "Gus", "es")
    group = emulator.group_chat(-1004, "Oficina")
    document = await emulator.send_document(
        group, user, files.docx_with_table(), "plan.docx", "application/octet-stream"
    )
    await emulator.send_text(group, user, "/keywords", reply_to=document)
    reply = await emulator.wait_until(answer(emulator, group["id"], "Frases clave"), timeout=30)
    assert reply["text"].startswith("plan.docx · ") and " palabras" in reply["text"]
    assert "tram" in reply["text"]


async def test_encrypted_pdf_and_csv_get_one_sentence(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=services())
    user = emulator.add_user(42, "Hal", "en")
    chat = emulator.private_chat(user)
    await emulator.send_document(
        chat, user, files.encrypted_pdf(), "locked.pdf", "application/pdf"
    )
    locked = await emulator.wait_until(answer(emulator, chat["id"], "password"), timeout=30)
    assert locked["text"] == "This PDF is password-protected; send a copy without a password."
    await emulator.send_document(chat, user, b"a,b\n1,2\n", "table.csv", "text/csv")
    refused = await emulator.wait_until(answer(emulator, chat["id"], "(.csv)"), timeout=30)
    assert refused["text"].startswith("I can't read this kind of file (.csv)")
