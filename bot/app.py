"""The python-telegram-bot Application and its lifecycle: resources opened in post_init and
closed in post_shutdown, the poller, the intake, the supervisor (services come from
``bot.factories``)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder

from bot.delivery import ChatOrderedProcessor, Intake, LocalPace, PacedRequests, Supervisor
from bot.delivery.health import Metrics
from bot.factories import (
    Services,
    access_policy,
    build_document_reader,
    build_services,
    documents_limits,
    fetch_policy,
    limits_from,
    open_store,
)
from bot.settings import Settings
from handlers import (
    HandlerDeps,
    command_menus,
    context_types,
    register_handlers,
)
from handlers.deps import watched
from handlers.generate import GenerateHandlers
from handlers.summary import SummaryHandlers
from services.ingest.chat_export import ChatExportReader
from services.ingest.fetch import WebReader
from services.storage.sql import SQLStore

logger = logging.getLogger(__name__)

STORE_DOWN: tuple[type[BaseException], ...] = (ConnectionError, OSError, TimeoutError)
"""What a store or queue that cannot be reached raises (the Redis queue raises
``QueueUnavailable``, a ``ConnectionError``)."""

ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.INLINE_QUERY,
    Update.GUEST_MESSAGE,
    Update.MY_CHAT_MEMBER,
    # Reactions rank digests; Telegram sends them only when asked, and only to admins.
    Update.MESSAGE_REACTION,
    Update.MESSAGE_REACTION_COUNT,
]


class PollOffset:
    """The next ``getUpdates`` offset, kept across restarts of the poller (a restarted poller
    must not confirm updates it never wrote, nor fetch again what it did)."""

    def __init__(self) -> None:
        self.value: int | None = None


async def long_poll(
    bot: Any,
    accept: Callable[[list[Update]], Awaitable[int]],
    poll_seconds: int,
    beat: Callable[[], None] = lambda: None,
    offset: PollOffset | None = None,
) -> None:
    """Long-poll: the next ``getUpdates`` (which confirms the offset to Telegram) is sent only
    after ``accept`` wrote the previous batch durably; when it fails, the batch is fetched
    again. ``beat`` is called after every answered poll (the supervisor's heartbeat); any
    other exception ends the task, and its supervisor restarts it."""
    position = offset or PollOffset()
    pause = 0.5
    while True:
        try:
            updates = await bot.get_updates(
                offset=position.value,
                timeout=poll_seconds,
                allowed_updates=ALLOWED_UPDATES,
                read_timeout=poll_seconds + 10,
            )
            beat()
            if updates:
                await accept(list(updates))
                position.value = updates[-1].update_id + 1
            pause = 0.5
            continue
        except TelegramError as exc:
            logger.warning("getUpdates failed (%s); retrying in %.1f s", exc, pause)
        except STORE_DOWN as exc:
            logger.warning("could not keep updates (%s); retrying in %.1f s", exc, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 30.0)


DELIVERY_KEEP_SECONDS = 86_400
"""Handled updates are remembered this long (Telegram re-delivers within hours, not days)."""
JOB_QUEUE_BEAT_SECONDS = 30.0
"""The job queue runs an empty job this often; silent for four times that, it counts as down."""


async def _nothing(context: object) -> None:
    """The job queue's heartbeat: that it ran is the news."""


class BotRuntime:
    """Opens resources in ``post_init`` and closes them in ``post_shutdown``.

    Args:
        settings: validated settings; the token must be set.
        services: the service layer (real ones by default; tests pass fakes).
        warm_up: load models in the background after start-up.
        clock: Unix time for quotas and statistics (tests move it across midnight).
    """

    def __init__(
        self,
        settings: Settings,
        services: Services | None = None,
        warm_up: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is required to build the application")
        self.settings = settings
        self.services = services or build_services(settings)
        self._warm = warm_up
        self._clock = clock
        self._warm_up_task: asyncio.Future[None] | None = None
        self._stopped = False
        self.store: SQLStore | None = None
        self.summary_handlers: SummaryHandlers | None = None
        self.processor = ChatOrderedProcessor()
        self.pacer = PacedRequests(LocalPace(overall_rate=settings.outbound_per_second))
        self.intake: Intake | None = None
        self.accepting = True
        """False once shutdown began: the webhook answers 503 so Telegram retries later."""
        self.supervisor = Supervisor(on_restart=lambda task: self.metrics.restarted(task))
        """Every long-lived task of this process (poller, stream reader, leases)."""
        self.metrics = Metrics(
            self.supervisor, in_hand=self._in_hand, model_server=self._model_server_state
        )
        self.processor.handled = self.metrics.observe
        self._polling = False
        self._generate_handlers: GenerateHandlers | None = None
        self.redis: Any = None
        """The Redis client with ``REDIS_URL`` (shared pace, coordination, the queue)."""
        self.consumer: Any = None
        """The stream consumer when this process is a worker."""
        self._coordination: Any = None
        self.application = self._build()

    def _build(self) -> Application:  # type: ignore[type-arg]
        token = self.settings.telegram_bot_token
        assert token is not None  # checked in __init__
        builder: ApplicationBuilder = (  # type: ignore[type-arg]
            Application.builder()
            .token(token.get_secret_value())
            .base_url(self.settings.bot_api_base_url)
            .base_file_url(self.settings.bot_api_file_url)
            .concurrent_updates(self.processor)
            .context_types(context_types())
            .rate_limiter(self.pacer)
            .updater(None)
            .post_init(self._post_init)
            .post_shutdown(self._post_shutdown)
        )
        return builder.build()

    async def _post_init(self, application: Application) -> None:  # type: ignore[type-arg]
        self.store = await open_store(self.settings)
        self.processor.ledger = self.store
        self.pacer.ledger = self.store
        coordination: Any = None
        if self.settings.redis_url is not None:
            from bot.delivery.coordination import RedisCoordination
            from bot.delivery.redis_client import connect
            from bot.delivery.shared_pace import RedisPace

            url = self.settings.redis_url.get_secret_value()
            self.redis = connect(url, socket_timeout=self.settings.redis_socket_timeout)
            self.pacer.pace = RedisPace(
                url,
                self.settings.redis_prefix + ":pace",
                self.redis,
                overall=self.settings.outbound_per_second,
            )
            coordination = RedisCoordination(self.redis, self.settings.redis_prefix)
        self._coordination = coordination
        self.intake = Intake(
            self.store,
            application.update_queue,
            lambda data: Update.de_json(data, application.bot),
            max_in_hand=self.settings.max_updates_in_hand,
        )
        self.processor.finished = [self.intake.release]
        documents = self.services.documents or build_document_reader(self.settings)
        deps = HandlerDeps(
            summarizer=self.services.summarizer,
            keywords=self.services.keywords,
            store=self.store,
            limits=limits_from(self.settings),
            generator=self.services.generator,
            speech=self.services.speech,
            documents=documents,
            links=WebReader(fetch_policy(self.settings), documents),
            archive=self.store,
            digests=self.services.digests,
            exports=ChatExportReader(limits=documents_limits(self.settings)),
            access=access_policy(self.settings),
            ledger=self.store,
            clock=self._clock,
            history=self.services.history,
            finish_updates=self.processor.finish,
            queue_wait=self.services.executor.expected_wait if self.services.executor else None,
            jobs=self.supervisor,
        )
        if coordination is not None:
            deps = dataclasses.replace(deps, coordination=coordination)
        self.summary_handlers, digest_handlers, self._generate_handlers = register_handlers(
            application, deps
        )
        if digest_handlers is not None:
            # Several workers: schedules set through one are picked up by all (each firing
            # still runs once).
            await digest_handlers.restore(
                application, sync_seconds=60.0 if self.redis is not None else 0.0
            )
        for language, commands in command_menus().items():
            try:
                await application.bot.set_my_commands(commands, language_code=language)
            except TelegramError as exc:
                logger.warning(
                    "could not register the command menu (%s): %s", language or "default", exc
                )
        if application.job_queue is not None:
            # The job queue's own heartbeat: /healthz turns 503 if it stops firing.
            self.supervisor.expect("job-queue", 4 * JOB_QUEUE_BEAT_SECONDS)
            application.job_queue.run_repeating(
                watched(self.supervisor, "job-queue", _nothing),
                interval=JOB_QUEUE_BEAT_SECONDS,
                first=1,
            )
            self.supervisor.expect("delivery-purge", 13 * 3600)
            application.job_queue.run_repeating(
                watched(self.supervisor, "delivery-purge", self._purge_delivery),
                interval=dt.timedelta(hours=6),
                first=1,
            )
        if self._warm:
            loop = asyncio.get_running_loop()
            self._warm_up_task = loop.run_in_executor(None, self.services.warm_up)
        logger.info("Condensa is ready as @%s", application.bot.username)

    async def warmed_up(self) -> None:
        """Wait until the background warm-up (if any) has finished."""
        if self._warm_up_task is not None:
            await self._warm_up_task

    async def _purge_delivery(self, context: object) -> None:
        slot = int(self._clock()) // (6 * 3600)
        if not await self._coordination_once(f"purge-delivery:{slot}", 6 * 3600):
            return
        if self.store is not None:
            forgotten = await self.store.purge_delivery(int(self._clock()) - DELIVERY_KEEP_SECONDS)
            if forgotten:
                logger.info("forgot %d handled updates older than a day", forgotten)

    async def _coordination_once(self, name: str, seconds: float) -> bool:
        if self._coordination is None:
            return True
        return bool(await self._coordination.once(name, seconds))

    async def _post_shutdown(self, application: Application) -> None:  # type: ignore[type-arg]
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None
        if self.summary_handlers is not None:
            await self.summary_handlers.shutdown()
        await self.close_connections()
        self.services.close()

    async def close_connections(self) -> None:
        """Close the store and Redis (also when a stop ran out of time half-way: an open
        SQLite connection's thread would keep the process alive)."""
        store, self.store = self.store, None
        if store is not None:
            await store.close()
        redis, self.redis = self.redis, None
        if redis is not None:
            await redis.aclose()

    async def start(self, polling: bool = True, poll_timeout: int = 10) -> None:
        """Initialize and start the application, re-handle what the last run left unfinished,
        then poll (unless a webhook feeds :attr:`intake`).

        ``poll_timeout`` is the long-poll length.
        """
        await self.application.initialize()
        await self._post_init(self.application)
        await self.application.start()
        assert self.intake is not None  # made in _post_init
        await self.intake.replay()
        if polling:
            self._polling = True
            offset = PollOffset()
            self.supervisor.run(
                "poller",
                lambda: self._poll(poll_timeout, offset),
                stale_after=poll_timeout + 40.0,
            )

    async def start_worker(self, name: str | None = None) -> None:
        """Initialize and start the application as a queue worker (``REDIS_URL``): updates
        come from the streams this worker owns and are acknowledged there when handled."""
        from bot.delivery.queue import QueueNames, QueueSeal, UpdateQueue, check_key
        from bot.delivery.streams import QueueLedger, StreamConsumer

        await self.application.initialize()
        await self._post_init(self.application)
        await self.application.start()
        assert self.store is not None and self.redis is not None and self.store.master
        await check_key(self.redis, self.settings.redis_prefix, self.store.master)
        bot = self.application.bot
        names = QueueNames(self.settings.redis_prefix, self.settings.queue_partitions)
        seal = QueueSeal(self.store.master)
        await self._hand_over_inbox(UpdateQueue(self.redis, names, seal))
        queue = self.application.update_queue
        self.consumer = StreamConsumer(
            self.redis,
            names,
            seal,
            lambda data: queue.put_nowait(Update.de_json(data, bot)),
            name=name,
            lease_seconds=self.settings.worker_lease_seconds,
        )
        self.processor.ledger = QueueLedger(self.store, self.consumer)
        self.pacer.fence = self.consumer.check_lease
        await self.consumer.start(self.supervisor)

    async def _hand_over_inbox(self, queue: Any) -> int:
        """Queue in Redis what a single-process run kept in the store's inbox and did not
        finish (the first start with ``REDIS_URL``), then mark it done there. Queued first: a
        crash in between queues it again, and the queue's seen-keys and the outbox make that
        harmless."""
        assert self.store is not None
        pending = await self.store.inbox_pending()
        if not pending:
            return 0
        bot = self.application.bot
        updates = [Update.de_json(json.loads(payload), bot) for _, payload in pending]
        queued = int(await queue.accept([u for u in updates if u is not None]))
        await self.store.inbox_done([update_id for update_id, _ in pending])
        logger.info(
            "handed %d unfinished updates from the inbox over to the Redis queue (%d new)",
            len(pending),
            queued,
        )
        return len(pending)

    async def _poll(self, poll_seconds: int, offset: PollOffset) -> None:
        assert self.intake is not None
        await long_poll(
            self.application.bot,
            self.intake.accept,
            poll_seconds,
            beat=lambda: self.supervisor.beat("poller"),
            offset=offset,
        )

    def _in_hand(self) -> int:
        if self.consumer is not None:
            return int(self.consumer.in_flight)
        return self.intake.in_hand if self.intake is not None else 0

    def _model_server_state(self) -> str:
        engine = getattr(self.services.generator, "engine", None)
        return str(getattr(engine, "state", "none"))

    async def accept(self, updates: list[Update]) -> int:
        """Keep updates (a webhook's) and queue them for handling; with ``MAX_UPDATES_IN_HAND``
        in hand, refuse at once (``Saturated``: the webhook answers 429, Telegram re-delivers)
        rather than hold the request open."""
        assert self.intake is not None, "start() first"
        return await self.intake.accept(updates, wait=False)

    @property
    def bot(self) -> Any:
        """The application's bot."""
        return self.application.bot

    def healthy(self) -> bool:
        """Whether the application runs and every supervised task is up."""
        return bool(self.application.running) and self.supervisor.healthy()

    async def stop_intake(self) -> None:
        """Take no more updates (polling stops at once; the webhook answers 503)."""
        self.accepting = False
        if self._polling:
            self._polling = False
            await self.supervisor.cancel("poller")

    async def drain(self, seconds: float) -> int:
        """SIGTERM: stop intake, stop generations, wait up to ``seconds`` for the updates in
        hand; returns how many are left (they stay in the inbox and run after the restart)."""
        await self.stop_intake()
        if self.consumer is not None:
            await self.consumer.pause()
        if self.summary_handlers is not None:
            await self.summary_handlers.shutdown()
        if self._generate_handlers is not None:
            self._generate_handlers.stop_all()
        return await self.processor.wait_idle(seconds)

    async def stop(self) -> None:
        """Stop polling, then the application, then close resources (once)."""
        if self._stopped:
            return
        self._stopped = True
        await self.stop_intake()
        if self._generate_handlers is not None:
            # A generation still streaming would keep its model thread, and so the process,
            # alive after the application stopped.
            self._generate_handlers.stop_all()
        if self.application.running:
            await self.application.stop()
        await self._post_shutdown(self.application)
        await self.supervisor.stop()
        await self.application.shutdown()
