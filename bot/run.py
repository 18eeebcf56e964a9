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
        await shut_down(runtime, settings.shutdown_seconds)


async def shut_down(runtime: BotRuntime, seconds: float) -> None:
    """Stop taking updates at once, give the ones in hand most of ``seconds``, then close;
    whatever is unfinished stays in the inbox and is handled again at the next start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    logger.info("stopping: no new updates; up to %.0f s for the ones in hand", seconds)
    left = await runtime.drain(seconds * 0.7)
    if left:
        logger.warning("%d updates unfinished: kept, handled again at the next start", left)
    try:
        await asyncio.wait_for(runtime.stop(), max(0.5, deadline - loop.time()))
    except TimeoutError:
        logger.warning("closing took too long; exiting (unfinished updates are kept)")


def make_webhook_app(runtime: BotRuntime, secret: str, path: str) -> web.Application:
    """An aiohttp app that writes POSTed updates to the inbox before answering 200, and
    answers ``/healthz``."""
    application = runtime.application

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            logger.warning("webhook call with a wrong or missing secret from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        if not runtime.accepting or runtime.intake is None:
            return web.Response(status=503, text="restarting")  # Telegram retries later
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400, text="bad json")
        if not isinstance(data, dict):
            return web.Response(status=400, text="bad update")
        update = Update.de_json(data, application.bot)
        await runtime.intake.accept([update])
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
    app = make_webhook_app(runtime, secret, webhook_path(settings.webhook_url))
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
        await runtime.stop_intake()
        await shut_down(runtime, settings.shutdown_seconds)
        await runner.cleanup()


async def run_webhook(settings: Settings) -> None:
    """Webhook mode until SIGINT/SIGTERM."""
    await serve_webhook(settings, stop_event())
