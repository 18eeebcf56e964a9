"""The store on PostgreSQL through asyncpg (``DATABASE_URL=postgresql://…``): for several
workers, or several machines, sharing one database.

A connection pool, no global lock: transactions of different chats run at once. Migrations
run through yoyo-migrations under an advisory lock (workers starting together migrate once;
``services.storage.migrate``). When the server restarts, the transaction in hand fails on its dead
connection, the pool opens new ones, and the transaction is run again from the start (for up
to ``reconnect_seconds``), so workers carry on.

Deletion: rows are deleted and, for a group, its key is deleted with them, so every copy of its
messages left in PostgreSQL's dead tuples, WAL or backups is unreadable (crypto-shredding);
PostgreSQL reclaims the dead tuples at its next (auto)vacuum.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from services.storage.migrate import postgres_uri, upgrade
from services.storage.sql import Row, SQLStore

logger = logging.getLogger(__name__)
R = TypeVar("R")

_PLACEHOLDER = re.compile(r"\?")

# What a lost connection raises: the server went away (restart, failover) or refused us while
# starting up. The transaction did not commit; running it again is safe.
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    # A pooled connection whose server process was terminated mid-use can fail the next
    # statement with "cannot switch to state …; another operation is in progress": the pool
    # drops it on release, and the transaction runs again on another (seen under the fault
    # harness, bench/chaos.py).
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
    OSError,
)


def _connection_lost(error: BaseException) -> bool:
    return isinstance(error, CONNECTION_LOST) and not isinstance(error, TimeoutError)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    pause = state.next_action.sleep if state.next_action is not None else 0.0
    logger.warning("PostgreSQL connection lost (%s); retrying in %.1f s", error, pause)


def dollar_params(sql: str) -> str:
    """``?`` parameters as PostgreSQL's ``$1, $2, …`` (our SQL has no literal ``?``)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class _PostgresTx:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        return [tuple(r) for r in await self._connection.fetch(dollar_params(sql), *params)]

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        row = await self._connection.fetchrow(dollar_params(sql), *params)
        return tuple(row) if row is not None else None

    async def execute(self, sql: str, *params: Any) -> int:
        status: str = await self._connection.execute(dollar_params(sql), *params)
        count = status.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            await self._connection.executemany(dollar_params(sql), rows)

    def deleted(self) -> None:
        """Nothing to do: group keys are shredded, vacuum reclaims the dead tuples."""


class PostgresDatabase:
    """A pool of connections; each transaction on one of them, retried when it was lost."""

    def __init__(
        self, pool: asyncpg.Pool, reconnect_seconds: float = 60.0, acquire_seconds: float = 10.0
    ) -> None:
        self.pool = pool
        self.reconnect_seconds = reconnect_seconds
        self.acquire_seconds = acquire_seconds

    async def run(self, operation: Callable[[Any], Awaitable[R]]) -> R:
        """Run ``operation`` in a transaction; a lost connection (the server restarted or
        failed over: nothing was committed) is retried with back-off for ``reconnect_seconds``
        (``tenacity``). A statement or a pool wait that ran out of time is reported at once
        (``TimeoutError`` is an ``OSError`` too): running it again would stall as long again."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_connection_lost),
            wait=wait_exponential(multiplier=0.2, max=5.0),
            stop=stop_after_delay(self.reconnect_seconds),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                # Bounded waits: a pool that hands out no connection, or a statement stuck on a
                # lock, raises TimeoutError (the caller's "store down") instead of stalling.
                async with (
                    self.pool.acquire(timeout=self.acquire_seconds) as connection,
                    connection.transaction(),
                ):
                    return await operation(_PostgresTx(connection))
        raise AssertionError("unreachable")  # pragma: no cover - reraise=True raises

    async def close(self) -> None:
        await self.pool.close()


class PostgresStore(SQLStore):
    """The store on PostgreSQL. Use :meth:`open`."""

    newest_first = "at DESC, ctid DESC"
    key_row_lock = " FOR SHARE"

    @classmethod
    async def open(
        cls,
        dsn: str,
        storage_key: str | None = None,
        key_dir: Path | None = None,
        pool_size: int = 10,
        reconnect_seconds: float = 60.0,
        command_seconds: float = 30.0,
        acquire_seconds: float = 10.0,
    ) -> PostgresStore:
        """Connect to ``dsn``, bring the schema up to date, unlock with the master key.

        Several workers share the database, so they must share the master key: set
        ``STORAGE_KEY`` (a key file per machine would differ).

        Raises:
            StorageKeyError: the key is malformed, missing, or not this database's key.
        """
        await asyncio.to_thread(upgrade, postgres_uri(dsn))
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=pool_size, command_timeout=command_seconds
        )
        try:
            store = cls(PostgresDatabase(pool, reconnect_seconds, acquire_seconds))
            await store._unlock(storage_key, key_dir or Path("."))
        except BaseException:
            await pool.close()
            raise
        return store
