"""Regenerate docs/playground.png: the playground after a summary and /settings.

.venv/bin/python docs/make_screenshot.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.async_api import async_playwright  # noqa: E402

from bot.settings import Settings  # noqa: E402
from playground.local import start_local_bot  # noqa: E402
from playground.web import Playground  # noqa: E402
from tests.browser import CHROMIUM_FLAGS  # noqa: E402


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(_env_file=None, data_dir=Path(data))  # type: ignore[call-arg]
        emulator, runtime = await start_local_bot(settings)
        playground = Playground(emulator, "en")
        url = await playground.start("127.0.0.1", 0)
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(
                executable_path="/usr/bin/chromium", args=list(CHROMIUM_FLAGS)
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            await page.goto(url)
            await page.wait_for_selector("body[data-ready=true]")
            await page.get_by_role("button", name="English news article").click()
            await page.locator(".bubble .body", has_text="sentences,").wait_for(timeout=60_000)
            await page.get_by_role("button", name="/settings").click()
            await page.locator(".keyboard button", has_text="short").first.wait_for()
            await page.screenshot(path=str(REPO / "docs" / "playground.png"))
            await browser.close()
        await playground.stop()
        await runtime.stop()
        await emulator.stop()


if __name__ == "__main__":
    asyncio.run(main())
