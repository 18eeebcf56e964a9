"""Run modes: long polling, webhook (aiohttp), and the local console chat with no token."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import re
import signal
import sys
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application

from bot.app import ALLOWED_UPDATES, BotRuntime
from bot.emulator import BotAPIEmulator
from bot.settings import Settings

logger = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


def _stop_event() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_polling(settings: Settings) -> None:
    """Long-poll the Bot API until SIGINT/SIGTERM."""
    stop = _stop_event()
    runtime = BotRuntime(settings)
    await runtime.start(polling=True)
    logger.info("polling %s", settings.telegram_api_url)
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        await runtime.stop()


def make_webhook_app(application: Application, secret: str, path: str) -> web.Application:  # type: ignore[type-arg]
    """An aiohttp app that feeds POSTed updates to ``application`` and answers ``/healthz``."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            logger.warning("webhook call with a wrong or missing secret from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400, text="bad json")
        if not isinstance(data, dict):
            return web.Response(status=400, text="bad update")
        update = Update.de_json(data, application.bot)
        await application.update_queue.put(update)
        return web.Response(text="ok")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": application.running})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post(path, receive)
    app.router.add_get("/healthz", healthz)
    return app


def webhook_path(url: str) -> str:
    """The local path Telegram will POST to, taken from ``WEBHOOK_URL``."""
    return urlparse(url).path or "/"


async def serve_webhook(settings: Settings, stop: asyncio.Event) -> None:
    """Serve webhook mode until ``stop`` is set."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    runtime = BotRuntime(settings)
    await runtime.start(polling=False)
    secret = settings.webhook_secret.get_secret_value()
    app = make_webhook_app(runtime.application, secret, webhook_path(settings.webhook_url))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_listen, settings.webhook_port)
    await site.start()
    try:
        await runtime.application.bot.set_webhook(
            url=settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        logger.info("webhook listening on %s:%d", settings.webhook_listen, settings.webhook_port)
        await stop.wait()
    finally:
        await runner.cleanup()
        await runtime.stop()


async def run_webhook(settings: Settings) -> None:
    """Webhook mode until SIGINT/SIGTERM."""
    await serve_webhook(settings, _stop_event())


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
    from bot.playground import Playground, ui_language

    stop = _stop_event()
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


_TAG_RE = re.compile(r"<[^>]+>")


def html_to_console(text: str) -> str:
    """Telegram HTML as plain console text."""
    return html.unescape(_TAG_RE.sub("", text))


async def run_console(settings: Settings) -> None:
    """No token: run the real bot against the built-in emulator and chat with it here.

    Each line typed is a message; ``/paste`` starts a multi-line message ended by a line with a
    single ``.``; ``/forward`` does the same as a forwarded message. Ctrl-D quits.
    """
    from bot.playground import ui_language

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
