"""Local run modes with no token: the real bot against the built-in emulator, in a browser
(the playground) or in a terminal (``condensa console``)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from pydantic import SecretStr

from bot.app import BotRuntime
from bot.run import stop_event
from bot.settings import Settings
from playground.api import BotAPIEmulator
from playground.web import Playground, ui_language


async def start_local_bot(settings: Settings) -> tuple[BotAPIEmulator, BotRuntime]:
    """The built-in emulator and the real bot polling it (no token needed)."""
    emulator = BotAPIEmulator()
    url = await emulator.start()
    local = settings.model_copy(
        update={"telegram_bot_token": SecretStr(emulator.token), "telegram_api_url": url}
    )
    runtime = BotRuntime(local)
    await runtime.start(polling=True, poll_timeout=2)
    await emulator.polling_started.wait()
    return emulator, runtime


async def run_playground(settings: Settings) -> None:
    """No token: the bot against its emulator, with the chat page in a browser."""
    stop = stop_event()
    emulator, runtime = await start_local_bot(settings)
    playground = Playground(emulator, ui_language())
    url = await playground.start(settings.playground_host, settings.playground_port)
    print(
        f"No TELEGRAM_BOT_TOKEN is set, so Condensa runs locally against its built-in Bot API "
        f"emulator.\nOpen {url} to chat with it (a private chat and a group).\n"
        "Set TELEGRAM_BOT_TOKEN in .env to run the real bot. Ctrl-C stops.",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await playground.stop()
        await runtime.stop()
        await emulator.stop()


async def run_console(settings: Settings) -> None:
    """No token: run the real bot against the built-in emulator and chat with it here.

    Each line typed is a message; ``/paste`` starts a multi-line message ended by a line with a
    single ``.``; ``/forward`` does the same as a forwarded message. Ctrl-D quits.
    """
    emulator, runtime = await start_local_bot(settings)
    user = emulator.add_user(1000, "You", language_code=ui_language())
    chat = emulator.private_chat(user)

    def show(event: str, payload: dict[str, Any]) -> None:
        if event != "call" or payload.get("method") not in ("sendMessage", "editMessageText"):
            return
        result = payload.get("result") or {}
        edited = " (edited)" if payload["method"] == "editMessageText" else ""
        print(f"\nCondensa{edited}:\n{result.get('text', '')}\n", flush=True)

    emulator.add_listener(show)
    print(
        "No TELEGRAM_BOT_TOKEN is set, so Condensa runs locally against its built-in Bot API "
        "emulator.\nType a message (try /help), '/paste' for a multi-line text ended by a line "
        "with a single '.', '/forward' to forward one; Ctrl-D quits.\n"
        "Set TELEGRAM_BOT_TOKEN in .env to run the real bot.",
        flush=True,
    )
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            line = line.rstrip("\n")
            if line in ("/paste", "/forward"):
                lines = []
                while True:
                    more = await asyncio.to_thread(sys.stdin.readline)
                    if not more or more.strip() == ".":
                        break
                    lines.append(more.rstrip("\n"))
                forward = (
                    {"id": 2000, "is_bot": False, "first_name": "Someone"}
                    if line == "/forward"
                    else None
                )
                await emulator.send_text(chat, user, "\n".join(lines), forward_from=forward)
            elif line.strip():
                await emulator.send_text(chat, user, line)
        # Let replies to the last input arrive before leaving.
        await asyncio.sleep(settings.forward_batch_seconds + 0.5)
        with contextlib.suppress(TimeoutError):
            await emulator.wait_until(
                lambda: (
                    runtime.services.executor is None or runtime.services.executor.in_flight == 0
                ),
                timeout=60,
            )
        await asyncio.sleep(0.5)
    finally:
        await runtime.stop()
        await emulator.stop()
