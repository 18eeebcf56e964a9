"""Run modes: long polling, webhook (aiohttp), and the local console chat with no token."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import urlparse

from aiohttp import web
from telegram import Bot, Update

from bot.app import ALLOWED_UPDATES, STORE_DOWN, BotRuntime, PollOffset, long_poll
from bot.delivery import Saturated, Supervisor
from bot.delivery.health import Metrics, add_health_routes, serve_health
from bot.settings import Settings

logger = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


def stop_event() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM. SIGUSR2 logs what every task is waiting for (for an
    operator looking at a bot that seems stuck)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGUSR2, log_tasks)
    return stop


def log_tasks() -> None:
    """Log the stack of every asyncio task (code locations only, never message text)."""
    for task in asyncio.all_tasks():
        where: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(where) < 40:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is None:
                where.append(type(awaited).__name__)
                break
            where.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        logger.warning("task %s: %s", task.get_name(), " -> ".join(where) or "(done)")


class TaskGivenUp(RuntimeError):
    """A supervised task kept dying: the process exits non-zero so that its own supervisor
    (systemd, the orchestrator) restarts it."""


async def until_stopped(stop: asyncio.Event, *supervisors: Supervisor) -> None:
    """Wait for SIGINT/SIGTERM; raise :class:`TaskGivenUp` when a supervised task gave up."""
    waits = [asyncio.ensure_future(stop.wait())]
    waits += [asyncio.ensure_future(s.failed.wait()) for s in supervisors]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    if any(s.failed.is_set() for s in supervisors):
        raise TaskGivenUp("a supervised task kept dying (see the log above)")


@contextlib.asynccontextmanager
async def health_server(
    settings: Settings, supervisor: Supervisor, ready: Any, metrics: Metrics
) -> AsyncIterator[None]:
    """``/healthz`` and ``/metrics`` on ``HEALTH_PORT`` while the block runs (0: none)."""
    runner = None
    if settings.health_port:
        try:
            runner = await serve_health(
                settings.health_port, supervisor, ready, metrics, host=settings.health_listen
            )
        except OSError as exc:
            raise TaskGivenUp(
                f"HEALTH_PORT {settings.health_port} cannot be used ({exc.strerror}); "
                "choose another port, or 0 for none"
            ) from exc
    try:
        yield
    finally:
        if runner is not None:
            await runner.cleanup()


async def run_polling(settings: Settings) -> None:
    """Long-poll the Bot API until SIGINT/SIGTERM (or until a task gives up)."""
    stop = stop_event()
    runtime = BotRuntime(settings)
    await runtime.start(polling=True)
    logger.info("polling %s", settings.telegram_api_url)
    try:
        async with health_server(settings, runtime.supervisor, runtime.healthy, runtime.metrics):
            await until_stopped(stop, runtime.supervisor)
    finally:
        await shut_down(runtime, settings.shutdown_seconds)


CLOSE_SECONDS = 3.0
"""After a stop that ran out of time, how long closing the store and Redis may take."""


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
        try:
            await asyncio.wait_for(runtime.close_connections(), CLOSE_SECONDS)
        except Exception:  # noqa: BLE001 - exiting anyway; say so and go
            logger.warning("the store or Redis did not close cleanly", exc_info=True)


class Receiver(Protocol):
    """Where a webhook puts updates: the bot's inbox, or the Redis queue of an ingress."""

    accepting: bool
    supervisor: Supervisor
    metrics: Metrics

    @property
    def bot(self) -> Any:
        """A bot to parse updates with."""
        ...

    async def accept(self, updates: list[Update]) -> int:
        """Write updates durably; the number that were new."""
        ...

    def healthy(self) -> bool:
        """Whether it is up."""
        ...


def make_webhook_app(runtime: Receiver, secret: str, path: str) -> web.Application:
    """An aiohttp app that writes POSTed updates to the inbox (or the queue) before answering
    200, and answers ``/healthz``."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            logger.warning("webhook call with a wrong or missing secret from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        if not runtime.accepting:
            return web.Response(status=503, text="restarting")  # Telegram retries later
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400, text="bad json")
        if not isinstance(data, dict):
            return web.Response(status=400, text="bad update")
        update = Update.de_json(data, runtime.bot)
        try:
            await runtime.accept([update])
        except Saturated:
            # As many updates in hand as the bot may hold: Telegram re-delivers later.
            return web.Response(status=429, text="busy", headers={"Retry-After": "5"})
        except STORE_DOWN as exc:
            logger.warning("could not keep an update (%s): Telegram will retry it", exc)
            return web.Response(status=503, text="unavailable")
        return web.Response(text="ok")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post(path, receive)
    add_health_routes(app, runtime.supervisor, runtime.healthy, runtime.metrics)
    return app


def webhook_path(url: str) -> str:
    """The local path Telegram will POST to, taken from ``WEBHOOK_URL``."""
    return urlparse(url).path or "/"


async def open_webhook(settings: Settings, receiver: Receiver) -> web.AppRunner:
    """Listen for Telegram's POSTs and register the webhook; the runner to clean up."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    app = make_webhook_app(receiver, secret, webhook_path(settings.webhook_url))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_listen, settings.webhook_port)
    await site.start()
    await receiver.bot.set_webhook(
        url=settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
    )
    logger.info("webhook listening on %s:%d", settings.webhook_listen, settings.webhook_port)
    return runner


async def serve_webhook(settings: Settings, stop: asyncio.Event) -> None:
    """Serve webhook mode until ``stop`` is set."""
    runtime = BotRuntime(settings)
    await runtime.start(polling=False)
    runner = None
    try:
        runner = await open_webhook(settings, runtime)
        await until_stopped(stop, runtime.supervisor)
    finally:
        await runtime.stop_intake()
        await shut_down(runtime, settings.shutdown_seconds)
        if runner is not None:
            await runner.cleanup()


async def run_webhook(settings: Settings) -> None:
    """Webhook mode until SIGINT/SIGTERM."""
    await serve_webhook(settings, stop_event())


# ---------------------------------------------------------------------- with REDIS_URL


class QueueIngress:
    """Receives updates (long polling or a webhook) and puts them on the Redis queue; holds
    no models and no database.

    The storage master key (``STORAGE_KEY``, or the key file in ``DATA_DIR``) seals queued
    updates; every process of the bot must have the same one (checked at start).
    """

    def __init__(self, settings: Settings) -> None:
        assert settings.telegram_bot_token is not None and settings.redis_url is not None
        self.settings = settings
        self.accepting = True
        self._bot = Bot(
            settings.telegram_bot_token.get_secret_value(),
            base_url=settings.bot_api_base_url,
            base_file_url=settings.bot_api_file_url,
        )
        self._redis: Any = None
        self._queue: Any = None
        self._polling = False
        self.supervisor = Supervisor()
        self.metrics = Metrics(self.supervisor)

    @property
    def bot(self) -> Bot:
        """The bot (getUpdates, setWebhook, parsing)."""
        return self._bot

    def healthy(self) -> bool:
        """Up while accepting and its poller (if any) runs."""
        return self.accepting and self.supervisor.healthy()

    async def start(
        self, master: Any = None, polling: bool = True, poll_timeout: int = 10
    ) -> None:
        """Connect, check the key, and poll (unless a webhook feeds :meth:`accept`)."""
        from bot.delivery.queue import QueueNames, QueueSeal, UpdateQueue, check_key
        from bot.delivery.redis_client import connect
        from services.storage.crypto import load_master_key

        settings = self.settings
        assert settings.redis_url is not None
        if master is None:
            key = settings.storage_key.get_secret_value() if settings.storage_key else None
            master = load_master_key(settings.data_dir, key, has_sealed_data=False)
        self._redis = connect(
            settings.redis_url.get_secret_value(), socket_timeout=settings.redis_socket_timeout
        )
        await check_key(self._redis, settings.redis_prefix, master)
        self._queue = UpdateQueue(
            self._redis,
            QueueNames(settings.redis_prefix, settings.queue_partitions),
            QueueSeal(master),
        )
        await self._bot.initialize()
        if polling:
            self._polling = True
            offset = PollOffset()
            self.supervisor.run(
                "poller",
                lambda: long_poll(
                    self._bot,
                    self.accept,
                    poll_timeout,
                    beat=lambda: self.supervisor.beat("poller"),
                    offset=offset,
                ),
                stale_after=poll_timeout + 40.0,
            )

    async def accept(self, updates: list[Update]) -> int:
        """Queue updates (``QueueUnavailable`` when Redis cannot take them)."""
        assert self._queue is not None, "start() first"
        return int(await self._queue.accept(updates))

    async def stop(self) -> None:
        """Stop taking updates and disconnect."""
        self.accepting = False
        await self.supervisor.stop()
        await self._bot.shutdown()
        if self._redis is not None:
            await self._redis.aclose()


@contextlib.asynccontextmanager
async def queue_ingress(settings: Settings, master: Any = None) -> AsyncIterator[QueueIngress]:
    """An ingress taking updates (long polling, or the webhook with ``WEBHOOK_URL``) into the
    Redis queue while the block runs."""
    ingress = QueueIngress(settings)
    await ingress.start(master=master, polling=not settings.webhook_url)
    runner = await open_webhook(settings, ingress) if settings.webhook_url else None
    logger.info("ingress: queueing updates in Redis (%d partitions)", settings.queue_partitions)
    try:
        yield ingress
    finally:
        await ingress.stop()
        if runner is not None:
            await runner.cleanup()


async def run_ingress(settings: Settings) -> None:
    """``python -m bot ingress``: take updates and queue them, until SIGINT/SIGTERM."""
    stop = stop_event()
    async with (
        queue_ingress(settings) as ingress,
        health_server(settings, ingress.supervisor, ingress.healthy, ingress.metrics),
    ):
        await until_stopped(stop, ingress.supervisor)


async def run_worker(settings: Settings) -> None:
    """``python -m bot worker``: handle queued updates, until SIGINT/SIGTERM."""
    stop = stop_event()
    runtime = BotRuntime(settings)
    await runtime.start_worker()
    logger.info("worker %s: handling queued updates", runtime.consumer.name)
    try:
        async with health_server(settings, runtime.supervisor, runtime.healthy, runtime.metrics):
            await until_stopped(stop, runtime.supervisor)
    finally:
        await shut_down(runtime, settings.shutdown_seconds)


async def run_combined(settings: Settings) -> None:
    """``python -m bot`` with ``REDIS_URL``: ingress, one worker and the schedules in one
    process (more workers may join with ``python -m bot worker``)."""
    stop = stop_event()
    runtime = BotRuntime(settings)
    await runtime.start_worker()
    assert runtime.store is not None
    try:
        async with (
            queue_ingress(settings, master=runtime.store.master) as ingress,
            health_server(settings, runtime.supervisor, runtime.healthy, runtime.metrics),
        ):
            await until_stopped(stop, runtime.supervisor, ingress.supervisor)
    finally:
        await shut_down(runtime, settings.shutdown_seconds)
