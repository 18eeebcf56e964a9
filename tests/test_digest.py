"""Digest building blocks: candidates, caching, topics, word cloud, exports, storage, parsing."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import sqlite3
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy import sparse

from handlers.digest import parse_schedule, schedule_time
from handlers.ranges import DigestWindow, parse_window
from handlers.render import MAX_LENGTH, message_link, render_digest, short_quote, telegram_length
from services.core.errors import EmptyInput, InputTooLarge, NotAnExport
from services.core.executor import ModelExecutor
from services.core.types import ChatDigest, ChatMessage, Topic
from services.digest.service import DigestService, drop_enclosed
from services.digest.topics import find_topics, npmi_coherence
from services.digest.wordcloud import render_word_cloud
from services.embeddings.cache import EmbeddingCache
from services.ingest.chat_export import bot_api_chat_id, flatten_text, parse_export
from services.keywords.candidates import candidate_counts, top_candidates
from services.keywords.extractor import KeyBERTExtractor
from services.storage.sqlite import MIGRATIONS, SQLiteStore
from services.text.lexicon import keyword_stop_words, stemmer
from tests.chat_samples import CHESS, GARDEN, two_topic_chat

CHAT = -1001234567890


def chat_messages(count: int = 60) -> list[ChatMessage]:
    ids = {"Ana": 1, "Bob": 2, "Carla": 3}
    return [
        ChatMessage(CHAT, i + 1, ids[author], author, 1_700_000_000 + 60 * i, text)
        for i, (author, text) in enumerate(two_topic_chat(count))
    ]


# ---------------------------------------------------------------- candidates and the cache


def test_candidate_counts_count_every_occurrence() -> None:
    counts = candidate_counts(
        "Neural networks are tomatoes. The neural networks of the brain; networks",
        keyword_stop_words("en"),
    )
    assert counts == {
        "neural networks": 2,
        "neural": 2,
        "networks": 3,
        "tomatoes": 1,
        "brain": 1,
    }


def test_top_candidates_keep_the_most_frequent_in_text_order() -> None:
    counts = {"alpha": 1, "beta gamma": 2, "delta": 3, "epsilon": 1}
    assert top_candidates(counts, 2) == ["beta gamma", "delta"]
    assert top_candidates(counts, 10) == list(counts)


class CountingBackend:
    name = "fake"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_phrases(self, phrases: list[str]) -> np.ndarray:
        self.calls.append(list(phrases))
        return np.array([[len(p), 1.0] for p in phrases], dtype=np.float32)


def test_the_phrase_cache_embeds_each_phrase_once_and_stays_bounded() -> None:
    backend = CountingBackend()
    cache = EmbeddingCache(capacity=3)
    first = cache.embed_phrases(backend, ["ab", "abc", "ab"])
    assert first.shape == (3, 2) and first[0, 0] == 2 and first[2, 0] == 2
    cache.embed_phrases(backend, ["abc", "abcd"])
    assert backend.calls == [["ab", "abc"], ["abcd"]]
    cache.embed_phrases(backend, ["x", "y"])  # evicts the least recently used
    cache.embed_phrases(backend, ["ab"])
    assert backend.calls[-1] == ["ab"]


def test_models_are_chosen_per_language_and_diversification_is_checked() -> None:
    extractor = KeyBERTExtractor(ModelExecutor(), models={"en": "minilm", "*": "e5"})
    assert extractor.model_name("en") == "minilm"
    assert extractor.model_name("es") == "e5"
    with pytest.raises(ValueError, match="diversification"):
        KeyBERTExtractor(ModelExecutor(), diversification="random")


async def test_keyphrases_come_best_first_with_mmr_and_with_max_sum() -> None:
    text = " ".join(GARDEN + CHESS)
    for diversification in ("mmr", "maxsum"):
        extractor = KeyBERTExtractor(ModelExecutor(), diversification=diversification)
        result = await extractor.extract(text, top_n=6, language="en")
        scores = [k.score for k in result.keyphrases]
        assert len(scores) == 6 and scores == sorted(scores, reverse=True)
        assert len({k.phrase for k in result.keyphrases}) == 6


def test_the_spanish_default_is_the_multilingual_e5_model() -> None:
    extractor = KeyBERTExtractor(ModelExecutor())
    vectors = extractor.embed_phrases(["tranvía", "autobús nocturno", "impuesto"], "es")
    assert extractor.model_name("es") == "e5"
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


# ---------------------------------------------------------------- topics and digests


def test_words_that_mostly_occur_inside_a_longer_phrase_are_dropped() -> None:
    kept = drop_enclosed({"sicilian defence": 9, "sicilian": 9, "defence": 10, "chess": 24})
    assert kept == {"sicilian defence": 9, "chess": 24}


def test_npmi_of_words_that_always_and_never_co_occur() -> None:
    presence = sparse.csc_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]]))
    assert npmi_coherence([[0, 1]], presence) == pytest.approx(1.0)
    assert npmi_coherence([[0, 2]], presence) == pytest.approx(-1.0)


@pytest.mark.parametrize("method", ["nmf", "lda"])
def test_topics_separate_the_two_conversations(method: str) -> None:
    texts = [text for _, text in two_topic_chat(60)]
    topics = find_topics(texts, keyword_stop_words("en"), method)
    assert 3 <= len(topics) <= 6
    assert sum(len(t.members) for t in topics) <= len(texts)
    sizes = [len(t.members) for t in topics]
    assert sizes == sorted(sizes, reverse=True)
    for topic in topics:
        assert topic.representative in topic.members
    if method == "nmf":  # LDA on 60 short messages is noisier; NMF must be clean
        words = [set(t.words) for t in topics[:2]]
        assert any("chess" in w for w in words) and any("tomato" in w for w in words)
        for topic in topics:
            members = {texts[m] for m in topic.members}
            assert members <= set(GARDEN) or members <= set(CHESS), topic.words


def test_too_little_text_has_no_topics() -> None:
    assert find_topics(["hello there", "general kenobi"], frozenset()) == []


def test_a_digest_counts_messages_and_quotes_real_ones() -> None:
    executor = ModelExecutor()
    keywords = KeyBERTExtractor(executor)
    service = DigestService(executor, keywords.backend, keywords.cache)
    messages = chat_messages()
    digest = service.digest_sync(messages)
    assert digest.language == "en"
    assert (digest.message_count, digest.participants) == (60, 3)
    assert (digest.first_date, digest.last_date) == (messages[0].date, messages[-1].date)
    phrases = dict(digest.keyphrases)
    assert len(phrases) == 10
    stem = stemmer("en")
    stemmed = [" ".join(stem(w.lower()) for w in re.findall(r"\w+", m.text)) for m in messages]
    for phrase, count in phrases.items():
        # Counted once per message that used any inflection of it ("tomato" / "tomatoes").
        pattern = re.compile(rf"\b{re.escape(phrase)}\b")
        exact = sum(bool(pattern.search(m.text.lower())) for m in messages)
        key = " ".join(stem(w) for w in phrase.split())
        inflected = sum(bool(re.search(rf"\b{re.escape(key)}\b", s)) for s in stemmed)
        assert exact <= count <= inflected, phrase
    assert {"chess", "tomato"} <= set(phrases) | {w for p in phrases for w in p.split()}
    assert all(topic.quote in messages for topic in digest.topics if topic.quote is not None)
    with pytest.raises(EmptyInput):
        service.digest_sync(messages[:2])


def test_the_word_cloud_is_a_png_and_needs_phrases() -> None:
    png = render_word_cloud({"chess tournament": 9, "tomato": 15, "garden": 12})
    assert png.startswith(b"\x89PNG")
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (800, 450)
    with pytest.raises(ValueError, match="no phrases"):
        render_word_cloud({"nothing": 0})


# ---------------------------------------------------------------- Telegram Desktop exports


def export_document(**extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Club",
        "type": "private_supergroup",
        "id": 1234567890,
        "messages": [
            {"id": 5, "type": "service", "date_unixtime": "1700000000", "action": "pin"},
            {
                "id": 6,
                "type": "message",
                "date_unixtime": "1700000060",
                "from": "Ana",
                "from_id": "user42",
                "text": ["See ", {"type": "link", "text": "example.org"}, " now"],
            },
            {"id": 7, "type": "message", "date_unixtime": "1700000120", "text": ""},
            {
                "id": 8,
                "type": "message",
                "date_unixtime": "1700000180",
                "from_id": "channel9",
                "text": "hi",
            },
        ],
    }
    document.update(extra)
    return document


def test_an_export_becomes_chat_messages() -> None:
    export = parse_export(json.dumps(export_document()).encode())
    assert export.chat_id == CHAT and export.title == "Club"
    assert export.messages == [
        ChatMessage(CHAT, 6, 42, "Ana", 1_700_000_060, "See example.org now"),
        ChatMessage(CHAT, 8, 0, "", 1_700_000_180, "hi"),
    ]


def test_a_zipped_export_is_read_and_broken_ones_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ChatExport/result.json", json.dumps(export_document()))
    assert len(parse_export(buffer.getvalue()).messages) == 2
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("notes.txt", "nothing")
    for data in (empty.getvalue(), b"PK\x03\x04broken", b"not json", b'{"chats": {}}', b"[1]"):
        with pytest.raises(NotAnExport):
            parse_export(data)
    with pytest.raises(InputTooLarge):
        parse_export(_zipped("x" * 2000), 1000)


def _zipped(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("result.json", text)
    return buffer.getvalue()


def test_export_ids_map_to_bot_api_ids() -> None:
    assert bot_api_chat_id(1234567890, "public_supergroup") == CHAT
    assert bot_api_chat_id(4321, "private_group") == -4321
    assert bot_api_chat_id(4321, "personal_chat") is None
    assert bot_api_chat_id("4321", "private_group") is None
    assert flatten_text(42) == ""


# ---------------------------------------------------------------- storage


async def test_the_archive_stores_edits_windows_and_privacy_choices(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "db.sqlite3")
    messages = chat_messages(12)
    assert (await store.digest_settings(CHAT)).enabled is False
    await store.set_digest_enabled(CHAT, True)
    assert await store.save_messages(messages) == 12
    await store.save_messages([ChatMessage(CHAT, 1, 1, "Ana", messages[0].date, "edited")])
    window = await store.messages(CHAT)
    assert [m.message_id for m in window] == list(range(1, 13)) and window[0].text == "edited"
    assert [m.message_id for m in await store.messages(CHAT, last=3)] == [10, 11, 12]
    since = messages[8].date
    assert [m.message_id for m in await store.messages(CHAT, since=since)] == [10, 11, 12]

    assert await store.set_opt_out(CHAT, 3, True) == 4  # Carla wrote every third message
    assert await store.save_messages(messages) == 8  # her messages are no longer kept
    assert await store.forget_user(CHAT, 2) == 4
    assert {m.author for m in await store.messages(CHAT)} == {"Ana"}
    await store.set_opt_out(CHAT, 3, False)
    assert await store.save_messages(messages[2:3]) == 1

    await store.set_schedule(CHAT, "21:00", "Europe/Madrid")
    await store.mark_digest(CHAT, 1_700_000_300)
    scheduled = await store.scheduled_chats()
    assert [(s.chat_id, s.schedule, s.timezone, s.last_digest_date) for s in scheduled] == [
        (CHAT, "21:00", "Europe/Madrid", 1_700_000_300)
    ]
    assert await store.purge_stored_before(0) == 0
    assert await store.purge_stored_before(2**40) == 5
    await store.forget_chat(CHAT)
    assert await store.scheduled_chats() == []
    await store.close()


async def test_a_version_one_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(MIGRATIONS[0])
        connection.execute("INSERT INTO chat_preferences (chat_id, method) VALUES (7, 'lsa')")
        connection.execute("PRAGMA user_version = 1")
    store = await SQLiteStore.open(path)
    assert (await store.get_preferences(7)).method == "lsa"
    await store.set_digest_enabled(7, True)
    assert (await store.digest_settings(7)).enabled
    await store.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


# ---------------------------------------------------------------- parsing and rendering


def test_digest_ranges_people_say_are_parsed() -> None:
    madrid = ZoneInfo("Europe/Madrid")
    now = dt.datetime(2026, 12, 2, 21, 30, tzinfo=madrid)  # a Wednesday
    stamp = int(now.timestamp())

    def midnight(day: int, month: int = 12) -> int:
        return int(dt.datetime(2026, month, day, tzinfo=madrid).timestamp())

    assert parse_window("", 1000, now) == DigestWindow()
    assert parse_window("200", 1000, now) == DigestWindow(last=200)
    assert parse_window("50000", 1000, now) == DigestWindow(last=1000)
    assert parse_window("6h", 1000, now) == DigestWindow(since=stamp - 6 * 3600)
    assert parse_window("2D", 1000, now) == DigestWindow(since=stamp - 2 * 86400)
    yesterday = DigestWindow(since=midnight(1) - 1, until=midnight(2))
    assert parse_window("yesterday", 1000, now) == yesterday
    assert parse_window("Ayer", 1000, now) == yesterday
    assert parse_window("hoy", 1000, now) == DigestWindow(since=midnight(2) - 1)
    monday = DigestWindow(since=midnight(30, 11) - 1)
    for said in ("since monday", "desde el lunes", "Since Monday", "desde lunes"):
        assert parse_window(said, 1000, now) == monday, said
    assert parse_window("desde el 3 de noviembre", 1000, now) == DigestWindow(
        since=midnight(3, 11) - 1
    )
    links = "https://t.me/c/123/45 https://t.me/c/123/9"
    assert parse_window(links, 1000, now) == DigestWindow(first_id=9, last_id=45)
    assert parse_window("threads", 1000, now) == DigestWindow(per_thread=True)
    assert parse_window("hilos", 1000, now) == DigestWindow(per_thread=True)
    for bad in ("0", "-5", "banana split", "https://t.me/c/123/45", "since tomorrow"):
        assert parse_window(bad, 1000, now) is None, bad


def test_schedules_are_parsed() -> None:
    assert parse_schedule(["21:00", "Europe/Madrid"]) == ("21:00", "Europe/Madrid")
    assert parse_schedule(["7:05"]) == ("7:05", "UTC")
    assert parse_schedule(["OFF"]) == ("", "")
    for bad in (["25:00"], ["21:00", "Mars/Olympus"], [], ["21:00", "UTC", "x"]):
        assert parse_schedule(bad) is None
    when = schedule_time("21:00:30", "Europe/Madrid")
    assert (when.hour, when.minute, when.second, str(when.tzinfo)) == (21, 0, 30, "Europe/Madrid")


def test_links_quotes_and_a_long_digest_split_safely() -> None:
    assert message_link(CHAT, 42) == "https://t.me/c/1234567890/42"
    assert message_link(CHAT, 42, "bookclub") == "https://t.me/bookclub/42"
    assert message_link(-4321, 42) == ""
    assert short_quote("a  b\nc") == "a b c"
    assert (
        short_quote("word " * 100, 30).endswith("…") and len(short_quote("word " * 100, 30)) <= 30
    )
    hostile = ChatMessage(
        CHAT, 9, 1, "<b>Eve</b>", 1_700_000_000, "<script>alert(1)</script> " * 20
    )
    digest = ChatDigest(
        language="en",
        message_count=5000,
        participants=40,
        first_date=1_700_000_000,
        last_date=1_700_090_000,
        keyphrases=[(f"phrase {i} & <co>", 100 - i) for i in range(30)],
        topics=[Topic([f"w{i}", "x" * 40], 10, hostile) for i in range(60)],
    )
    messages = render_digest(digest, "es")
    assert len(messages) > 1
    assert all(telegram_length(m) <= MAX_LENGTH for m in messages)
    joined = "".join(messages)
    assert "<script>" not in joined and "&lt;script&gt;" in joined and "&lt;b&gt;Eve" in joined
    assert messages[0].startswith("<b>Resumen</b> · 5,000 mensajes de 40 personas")
