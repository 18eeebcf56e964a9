"""The playground in headless Chromium (Debian's package), driven by Playwright's async API."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.factories import Services
from playground.api import BotAPIEmulator
from playground.web import Playground
from services.core.executor import ModelExecutor
from services.digest.service import DigestService
from services.ingest.documents import ReaderLimits
from services.keywords.extractor import KeyBERTExtractor
from services.speech.service import SpeechService
from services.speech.transcribers import WhisperTranscriber
from services.summarize.service import build_summary_service
from tests import media_samples
from tests.browser import CHROMIUM_FLAGS
from tests.conftest import BotFactory

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WHISPER = WhisperTranscriber(languages=("en", "es"))  # loaded on first use, once
playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (make test installs it)",
)


MICROPHONE_SENTENCE = "The new battery charges in a few minutes."
_SHOTS = os.environ.get("SCREENSHOTS_DIR")
SCREENSHOTS = Path(_SHOTS).resolve() if _SHOTS else None  # resolved before tests change directory
"""``make screenshots`` sets it (to docs/): the tests below then write the pictures the README
and the docs show, so a change to the page cannot leave an old picture behind."""


async def shoot(page: Any, name: str) -> None:
    """Save the page as ``name`` under :data:`SCREENSHOTS` (when set)."""
    if SCREENSHOTS is not None:
        await page.screenshot(path=str(SCREENSHOTS / name))


@pytest.fixture
async def page(
    emulator: BotAPIEmulator, make_bot: BotFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    executor = ModelExecutor(1, 4)
    keywords = KeyBERTExtractor(executor)
    services = Services(
        summarizer=build_summary_service(executor, 100_000, default_method="lexrank"),
        keywords=keywords,
        executor=executor,
        digests=DigestService(executor, keywords.backend, keywords.cache),
        speech=SpeechService([WHISPER], ModelExecutor(1, 2), ReaderLimits(timeout=60)),
    )
    await make_bot(services=services)
    playground = Playground(emulator, "en")
    url = await playground.start("127.0.0.1", 0)
    async with playwright_api.async_playwright() as driver:
        # Playwright gives each launch a fresh, empty profile of its own.
        flags = list(CHROMIUM_FLAGS)
        if request.node.get_closest_marker("microphone"):
            # A microphone that speaks: Chromium's fake capture device plays a WAV file.
            media_samples.need("espeak-ng")
            wav = tmp_path / "microphone.wav"
            await asyncio.to_thread(
                subprocess.run,
                ["espeak-ng", "-v", "en-us", "-w", str(wav), MICROPHONE_SENTENCE],
                check=True,
            )
            flags += [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
            ]
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=flags)
        tab = await browser.new_page(viewport={"width": 1200, "height": 800})
        await tab.goto(url)
        await tab.wait_for_selector("body[data-ready=true]")
        yield tab
        await browser.close()
    await playground.stop()


async def test_a_long_text_gets_a_summary(page: Any) -> None:
    await page.get_by_role("button", name="English news article").click()
    summary = page.locator(".bubble .body", has_text="LexRank · 3 of 12 sentences")
    await summary.wait_for(timeout=20_000)
    assert "tram" in (await summary.inner_text())
    await shoot(page, "playground.png")


async def test_settings_button_applies_the_choice(page: Any) -> None:
    await page.get_by_role("button", name="/settings").click()
    await page.locator(".keyboard button", has_text="short").first.click()
    await page.locator(".bubble .body", has_text="Length: short").wait_for(timeout=15_000)
    await page.locator("#toast", has_text="Saved").wait_for(timeout=5_000)
    assert await page.locator(".keyboard button", has_text="✓ short").count() == 1


async def test_upload_a_file(page: Any) -> None:
    text = (
        "The council approved a tram plan. It adds three lines. It costs 450 million euros. "
        "Night buses will double. Businesses criticised the parking tax."
    )
    await page.set_input_files(
        "#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": text.encode()}]
    )
    reply = page.locator(".bubble .body", has_text="notes.txt")
    await reply.wait_for(timeout=20_000)
    assert "LexRank" in await reply.inner_text()
    assert await page.locator(".bubble .document", has_text="notes.txt").count() == 1


async def test_upload_a_photo_and_a_voice_note(page: Any, tmp_path: Path) -> None:
    media_samples.need("tesseract", "ffmpeg", "espeak-ng")
    picture = media_samples.page(media_samples.PAGE_ENGLISH)
    await page.set_input_files(
        "#file", files=[{"name": "page.png", "mimeType": "image/png", "buffer": picture}]
    )
    read = page.locator(".bubble .body", has_text="📷 · OCR")
    await read.wait_for(timeout=30_000)
    assert "three new libraries" in await read.inner_text()
    assert await page.locator(".bubble img[alt^='photo from']").count() == 1
    note = media_samples.spoken(media_samples.ENGLISH, "en", tmp_path)
    await page.set_input_files(
        "#file", files=[{"name": "note.ogg", "mimeType": "audio/ogg", "buffer": note}]
    )
    heard = page.locator(".bubble .body", has_text="🎙 0:1")
    await heard.wait_for(timeout=60_000)
    assert "battery" in await heard.inner_text()
    assert await page.locator(".bubble audio.voice").count() == 1


@pytest.mark.microphone
async def test_record_a_voice_note_with_the_microphone(page: Any) -> None:
    media_samples.need("ffmpeg")
    await page.click("#record")
    await page.wait_for_function(
        "Number(document.querySelector('#record').dataset.seconds || 0) >= 4", timeout=20_000
    )
    await page.click("#record")
    heard = page.locator(".bubble .body", has_text="🎙 0:0")
    await heard.wait_for(timeout=60_000)
    assert "battery" in (await heard.inner_text()).lower()
    assert await page.locator(".bubble audio.voice").count() == 1


async def test_group_members_speak_and_html_is_never_injected(page: Any) -> None:
    await page.get_by_role("button", name="Book club").click()
    for name, text in (
        ("Ana", "Hola desde Ana"),
        ("Bob", "<img src=x onerror=window.hacked=1> <b>hi</b>"),
    ):
        await page.select_option("#speaker", label=name)
        await page.fill("#text", text)
        await page.click("#send")
        await page.locator(".bubble .author", has_text=name).first.wait_for(timeout=5_000)
    bob = page.locator(".bubble", has_text="<img src=x")
    await bob.wait_for(timeout=5_000)
    assert "<b>hi</b>" in await bob.inner_text(), "user text is shown as text"
    assert await page.locator("img[src='x']").count() == 0
    assert await page.evaluate("window.hacked") is None
    await page.get_by_role("button", name="/help in the group").click()
    help_reply = page.locator(".bubble .body", has_text="privacy mode")
    await help_reply.wait_for(timeout=10_000)
    assert await help_reply.locator("b").count() >= 1, "the bot's own <b> renders as bold"


async def test_group_digest_shows_the_word_cloud(page: Any) -> None:
    await page.get_by_role("button", name="Book club").click()
    await page.get_by_role("button", name="/digest_on (Ana, admin)").click()
    # Ana writes in Spanish, so the bot answers her in Spanish.
    await page.locator(".bubble .body", has_text="Resúmenes activados").wait_for(timeout=10_000)
    await page.get_by_role("button", name="A book-club chat on two topics").click()
    for name, text in (
        ("Bob", "The tram strike on Monday means the book club should meet online."),
        ("Carla", "Fine, I will finish the novel on the tram anyway."),
    ):
        await page.select_option("#speaker", label=name)
        await page.fill("#text", text)
        await page.click("#send")
    await page.locator(".bubble", has_text="I will finish the novel").wait_for(timeout=5_000)
    await page.get_by_role("button", name="/digest", exact=True).click()
    digest = page.locator(".bubble .body", has_text=re.compile(r"14 (messages|mensajes)"))
    await digest.wait_for(timeout=60_000)
    text = (await digest.inner_text()).lower()
    assert "tram" in text and "novel" in text
    photo = page.locator(".bubble img[alt='photo from Condensa']")
    await photo.wait_for(timeout=30_000)
    assert await photo.evaluate("image => image.complete && image.naturalWidth") == 800
    await digest.scroll_into_view_if_needed()
    await shoot(page, "digest.png")


async def test_guest_mode_and_inline_results_in_the_playground(page: Any) -> None:
    """In a group the bot is not in, a reply "@bot" gets the summary posted into that chat;
    "@bot <text>" typed anywhere offers inline results, and the one picked is posted "via"."""
    await page.get_by_role("button", name="Neighbours (no bot)").click()
    await page.locator("#chat-hint", has_text="Condensa is not in this chat").wait_for()
    await page.select_option("#speaker", label="Bob")
    article = (
        "The city council approved a plan to expand the tram network on Monday. The plan adds "
        "three tram lines and doubles the number of night buses. It will cost 450 million euros "
        "over six years. Local businesses welcomed the tram lines but criticised a new parking "
        "tax. Construction of the first line will start in the spring."
    )
    await page.fill("#text", article)
    await page.click("#send")
    posted = page.locator(".bubble", has_text="expand the tram network")
    await posted.wait_for(timeout=5_000)
    await posted.locator(".reply-button").click()
    bot = await page.evaluate("fetch('/api/state').then(r => r.json()).then(s => s.bot.username)")
    await page.select_option("#speaker", label="Carla")
    await page.fill("#text", f"@{bot}")
    await page.click("#send")
    answer = page.locator(".bubble", has_text=f"via @{bot}").filter(has_text="LexRank")
    await answer.wait_for(timeout=30_000)
    assert "tram" in (await answer.inner_text()).lower()

    await page.locator("#text").press_sequentially(f"@{bot} {article[:200]}")
    result = page.locator(".inline-result", has_text="Key phrases")
    await result.wait_for(timeout=30_000)
    assert await page.locator(".inline-result", has_text="Summary").count() == 1
    await result.click()
    chosen = page.locator(".bubble.mine", has_text=f"via @{bot}")
    await chosen.wait_for(timeout=5_000)
    assert "1." in await chosen.inner_text()
    assert await page.locator("#inline-results").is_hidden()
