"""Voice notes and photos through the bot and the Bot API emulator: the transcript with its
length and the summary; the text of a photo; one sentence for what cannot be read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.executor import ModelExecutor
from services.digest.service import DigestService
from services.ingest.documents import ReaderLimits
from services.keywords.extractor import KeyBERTExtractor
from services.speech.service import SpeechService
from services.speech.transcribers import WhisperTranscriber
from services.summarize.service import build_summary_service
from tests import media_samples as samples
from tests.conftest import BotFactory

LONG_PAGE = "\n".join(
    [
        samples.PAGE_ENGLISH,
        "Work on the first library will start in March near the central station.",
        "The council will publish the full budget on its website next week.",
        "Residents can send their comments by email until the end of the month.",
    ]
)


@pytest.fixture(scope="module")
def whisper() -> WhisperTranscriber:
    return WhisperTranscriber(languages=("en", "es"))


@pytest.fixture
def services(whisper: WhisperTranscriber) -> Services:
    samples.need("ffmpeg", "tesseract", "espeak-ng")
    executor = ModelExecutor(1, 4)
    keywords = KeyBERTExtractor(executor)
    return Services(
        summarizer=build_summary_service(executor, 100_000, default_method="lexrank"),
        keywords=keywords,
        executor=executor,
        speech=SpeechService([whisper], ModelExecutor(1, 2), ReaderLimits(timeout=60)),
        digests=DigestService(executor, keywords.backend, keywords.cache),
    )


def reply_with(emulator: BotAPIEmulator, chat_id: int, needle: str) -> Any:
    return lambda: next(
        (
            m
            for m in emulator.bot_messages(chat_id)
            if needle in m.get("text", "") and not m["text"].startswith(("⏳", "🎙 Transcribing"))
        ),
        None,
    )


def quoted(message: dict[str, Any]) -> str:
    """The text of a message's expandable quotes."""
    text = message["text"].encode("utf-16-le")
    return "\n".join(
        text[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in message.get("entities", [])
        if e["type"] == "expandable_blockquote"
    )


async def test_a_voice_note_in_private_gets_its_transcript_and_summary(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services, tmp_path: Path
) -> None:
    await make_bot(services=services)
    user = emulator.add_user(60, "Vera", "en")
    chat = emulator.private_chat(user)
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    await emulator.send_voice(chat, user, note, duration=15)
    reply = await emulator.wait_until(reply_with(emulator, chat["id"], "🎙 0:"), timeout=60)
    heading = reply["text"].split("\n")[0]
    assert heading.startswith("🎙 0:1") and heading.endswith(" words")
    assert samples.normalized_wer(samples.ENGLISH, quoted(reply)) <= 0.10
    assert "LexRank · " in reply["text"] and "battery" in reply["text"].split("LexRank")[1]


async def test_summary_as_a_reply_to_a_voice_note_in_a_group(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services, tmp_path: Path
) -> None:
    await make_bot(services=services)
    user = emulator.add_user(61, "Walt", "es")
    group = emulator.group_chat(-1061, "Equipo")
    note = await emulator.send_voice(
        group, user, samples.spoken(samples.SPANISH, "es", tmp_path), duration=14
    )
    await emulator.send_text(group, user, "/summary", reply_to=note)
    reply = await emulator.wait_until(reply_with(emulator, group["id"], "🎙 0:"), timeout=60)
    assert " palabras" in reply["text"].split("\n")[0]
    assert "puerto" in quoted(reply).lower()


async def test_recordings_that_cannot_be_transcribed_get_one_sentence(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services, tmp_path: Path
) -> None:
    await make_bot(services=services)
    user = emulator.add_user(62, "Xia", "en")
    chat = emulator.private_chat(user)
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    cases = [
        (b"", 1, "This file is empty."),
        (note[:200], 15, "I can't read this file: it seems damaged or is not what its name says."),
        (
            samples.silence(3 * 3600, tmp_path, codec="flac"),
            10800,
            "This is too long for me: 180 minutes, the limit is 20.",
        ),
        (samples.silence(4, tmp_path), 4, "I heard no speech in this recording."),
    ]
    for data, seconds, sentence in cases:
        await emulator.send_voice(chat, user, data, duration=seconds, kind="audio")
        answered = await emulator.wait_until(
            reply_with(emulator, chat["id"], sentence), timeout=60
        )
        assert answered["text"] == sentence


async def test_a_photo_with_the_summary_caption_is_read_and_summarized(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services
) -> None:
    await make_bot(services=services)
    user = emulator.add_user(63, "Yann", "en")
    chat = emulator.private_chat(user)
    await emulator.send_photo(chat, user, samples.page(LONG_PAGE), 1500, 440, caption="/summary")
    reply = await emulator.wait_until(reply_with(emulator, chat["id"], "📷 · OCR"), timeout=60)
    assert reply["text"].startswith("📷 · OCR · 1 page · ")
    assert "LexRank · " in reply["text"] and "hard to read" not in reply["text"]


async def test_a_short_photo_in_private_gets_its_text_and_doubt_is_said(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services
) -> None:
    await make_bot(services=services, ocr_min_confidence=99.0)
    user = emulator.add_user(64, "Zoe", "es")
    chat = emulator.private_chat(user)
    await emulator.send_photo(chat, user, samples.page(samples.PAGE_SPANISH), 1500, 260)
    reply = await emulator.wait_until(reply_with(emulator, chat["id"], "📷 · OCR"), timeout=60)
    assert "⚠️ El texto se leía mal" in reply["text"]
    assert "bibliotecas nuevas" in reply["text"]
    await emulator.send_photo(chat, user, samples.page(""), 1500, 200)
    blank = await emulator.wait_until(
        reply_with(emulator, chat["id"], "No he encontrado texto"), timeout=60
    )
    assert blank["text"] == "No he encontrado texto que leer en esta imagen."


async def test_voice_notes_in_a_group_with_digests_on_are_kept_as_transcripts(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services, tmp_path: Path
) -> None:
    runtime = await make_bot(services=services)
    store = runtime.store
    assert store is not None
    group = emulator.group_chat(-1065, "Radio")
    emulator.set_member_status(group["id"], emulator.bot_user["id"], "administrator")
    user = emulator.add_user(65, "Abe", "en")
    await store.set_digest_enabled(group["id"], True)
    sent = await emulator.send_voice(
        group, user, samples.spoken(samples.ENGLISH, "en", tmp_path), duration=15
    )

    async def kept() -> list[Any]:
        return await store.messages(group["id"])

    deadline = asyncio.get_running_loop().time() + 60
    while not (rows := await kept()):
        assert asyncio.get_running_loop().time() < deadline, "the transcript was never kept"
        await asyncio.sleep(0.05)
    assert rows[0].message_id == sent["message_id"] and rows[0].author == "Abe"
    assert rows[0].text.startswith("🎙 ")
    assert samples.normalized_wer(samples.ENGLISH, rows[0].text[2:]) <= 0.10
    assert not emulator.bot_messages(group["id"])  # kept quietly: nothing posted


async def test_forwarded_voice_notes_join_the_forward_batch(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services, tmp_path: Path
) -> None:
    await make_bot(services=services, forward_batch_seconds=1.0)
    user = emulator.add_user(66, "Bea", "en")
    chat = emulator.private_chat(user)
    ana, ben = emulator.add_user(67, "Ana", "en"), emulator.add_user(68, "Ben", "en")
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    await emulator.send_voice(chat, user, note, duration=15, forward_from=ben)
    alone = await emulator.wait_until(reply_with(emulator, chat["id"], "🎙 0:"), timeout=60)
    assert samples.normalized_wer(samples.ENGLISH, quoted(alone)) <= 0.10
    await emulator.send_text(
        chat,
        user,
        "Did you hear about the new battery from the university lab?",
        forward_from=ana,
    )
    await emulator.send_voice(chat, user, note, duration=15, forward_from=ben)
    batch = await emulator.wait_until(reply_with(emulator, chat["id"], "Ana"), timeout=60)
    assert "🎙" not in batch["text"].split("\n")[0]  # one summary of the conversation
    assert "Ben" in batch["text"] and "charges in a few minutes" in batch["text"]


async def test_an_album_of_pages_gets_one_summary(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services
) -> None:
    await make_bot(services=services, forward_batch_seconds=1.0)
    user = emulator.add_user(69, "Cai", "en")
    chat = emulator.private_chat(user)
    first, second = LONG_PAGE.split("\n")[:3], LONG_PAGE.split("\n")[3:]
    for lines in (first, second):
        picture = samples.page("\n".join(lines))
        await emulator.send_photo(chat, user, picture, 1500, 300, media_group_id="album-1")
    summary = await emulator.wait_until(reply_with(emulator, chat["id"], "LexRank"), timeout=60)
    assert "of 6 sentences" in summary["text"]
    answers = [m for m in emulator.bot_messages(chat["id"]) if not m["text"].startswith("⏳")]
    assert answers == [summary]  # one answer for the album, not one per photo


async def test_an_audio_file_with_the_summary_caption_is_transcribed(
    emulator: BotAPIEmulator, make_bot: BotFactory, services: Services, tmp_path: Path
) -> None:
    await make_bot(services=services)
    user = emulator.add_user(72, "Dev", "en")
    group = emulator.group_chat(-1072, "Podcasts")
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    await emulator.send_document(group, user, note, "episode.ogg", "audio/ogg", caption="/summary")
    reply = await emulator.wait_until(reply_with(emulator, group["id"], "🎙 0:"), timeout=60)
    assert samples.normalized_wer(samples.ENGLISH, quoted(reply)) <= 0.10
