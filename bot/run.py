"""Run modes: long polling, webhook (aiohttp), and the local console chat with no token."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from urllib.parse import urlparse

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.app import ALLOWED_UPDATES, BotRuntime
from bot.settings import Settings

logger = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


def stop_event() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_polling(settings: Settings) -> None:
    """Long-poll the Bot API until SIGINT/SIGTERM."""
    stop = stop_event()
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
    await serve_webhook(settings, stop_event())
