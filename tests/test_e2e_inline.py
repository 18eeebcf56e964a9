"""Inline mode through the bot and the emulator: ``@bot <link>`` in any chat."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.executor import ModelExecutor
from services.keywords.extractor import KeyBERTExtractor
from services.summarize.service import build_summary_service
from tests.conftest import BotFactory, long_article
from tests.test_fetch import PUBLIC, respond, serve


async def test_a_link_asked_inline_gets_a_summary_and_key_phrases_then_from_memory(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    article = f"<html><body><article><p>{long_article(18)}</p></article></body></html>"
    assert len(article.split()) > 3000
    runner, port = await serve(PUBLIC, [web.get("/long", respond(article.encode(), "text/html"))])
    try:
        executor = ModelExecutor(1, 4)
        services = Services(
            summarizer=build_summary_service(executor, 100_000, default_method="lexrank"),
            keywords=KeyBERTExtractor(executor),
            executor=executor,
        )
        runtime = await make_bot(services=services, fetch_allowed_addresses=[PUBLIC])
        user = emulator.add_user(70, "Ines", "es")
        link = f"http://{PUBLIC}:{port}/long"

        async def ask() -> tuple[dict[str, Any], float]:
            started = time.monotonic()
            query_id = await emulator.send_inline_query(user, link, chat_type="group")
            answer = await emulator.wait_until(lambda: emulator.inline_answers.get(query_id))
            return answer, time.monotonic() - started

        first, _ = await ask()
        titles = [shown["title"] for shown in first["shown"]]
        assert titles == ["Resumen", "Frases clave"]
        summary = first["shown"][0]["text"]
        assert summary.startswith(f"{PUBLIC}/long · ") and "LexRank · " in summary
        assert first["is_personal"] is False and first["cache_time"] == 300
        second, _ = await ask()
        assert second["shown"] == first["shown"]
        handlers = runtime.application.handlers[0]
        inline = next(h for h in handlers if type(h).__name__ == "InlineQueryHandler")
        assert inline.callback.__self__.computed == 1  # the second came from memory
    finally:
        await runner.cleanup()


async def test_a_private_address_is_not_fetched_inline(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    executor = ModelExecutor(1, 4)
    services = Services(
        summarizer=build_summary_service(executor, 100_000, default_method="lexrank"),
        keywords=KeyBERTExtractor(executor),
        executor=executor,
    )
    await make_bot(services=services)
    user = emulator.add_user(71, "Jon", "en")
    query_id = await emulator.send_inline_query(user, "http://127.0.0.1:9/admin")
    answer = await emulator.wait_until(lambda: emulator.inline_answers.get(query_id))
    assert answer["shown"] == [] and answer["button"]["start_parameter"] == "inline"
