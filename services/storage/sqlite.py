"""The store on one SQLite file under ``DATA_DIR`` (aiosqlite): the default, no server needed.

Deletions run with ``secure_delete`` on and end with a truncating WAL checkpoint, so deleted
rows leave no readable bytes in the database file or its write-ahead log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from services.storage.migrate import sqlite_uri, upgrade
from services.storage.schema import MIGRATIONS
from services.storage.sql import Row, SQLStore, Tx

__all__ = ["MIGRATIONS", "SQLiteStore"]

logger = logging.getLogger(__name__)
R = TypeVar("R")


class _SQLiteTx:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self.scrub = False

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        async with self._db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        async with self._db.execute(sql, params) as cursor:
            row: Row | None = await cursor.fetchone()
            return row

    async def execute(self, sql: str, *params: Any) -> int:
        cursor = await self._db.execute(sql, params)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db.executemany(sql, rows)

    def deleted(self) -> None:
        self.scrub = True


class SQLiteDatabase:
    """One connection; one transaction at a time (updates are handled concurrently, and an
    open cursor interleaved with another task's commit makes sqlite3 fail)."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        self.lock = asyncio.Lock()

    async def run(self, operation: Callable[[Any], Awaitable[R]]) -> R:
        async with self.lock:
            tx = _SQLiteTx(self.connection)
            try:
                result = await operation(tx)
                # sqlite3 opens a transaction only for a write: a read has nothing to commit
                # (and each commit is a trip to aiosqlite's thread).
                if self.connection.in_transaction:
                    await self.connection.commit()
            except BaseException:
                if self.connection.in_transaction:
                    await self.connection.rollback()
                raise
            if tx.scrub:
                await self.scrub()
            return result

    async def scrub(self) -> None:
        """After deletions: copy the write-ahead log into the (zeroed) pages and truncate it,
        so the deleted rows' bytes are neither in the WAL nor in the database file."""
        async with self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
            busy, _, _ = await cursor.fetchone() or (0, 0, 0)
        if busy:
            logger.warning("WAL checkpoint was blocked by a reader; deleted pages remain in it")

    async def close(self) -> None:
        await self.connection.close()


class SQLiteStore(SQLStore):
    """The store on one SQLite file. Use :meth:`open` to create it; the file and its
    directory are created on first run."""

    def __init__(self, db: SQLiteDatabase) -> None:
        super().__init__(db)
        self._sqlite = db
        self.path = db.path

    @classmethod
    async def open(
        cls, path: Path, storage_key: str | None = None, key_dir: Path | None = None
    ) -> SQLiteStore:
        """Open (creating if needed) the database at ``path``, bring its schema up to date and
        unlock it with the master key (``storage_key``, else ``key_dir/storage.key``).

        Raises:
            StorageKeyError: the key is malformed, missing, or not this database's key.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(upgrade, sqlite_uri(path))
        connection = await aiosqlite.connect(path)
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            # Deleted content is overwritten with zeros instead of left in free space.
            await connection.execute("PRAGMA secure_delete=ON")
            store = cls(SQLiteDatabase(connection, path))
            await store._unlock(storage_key, key_dir or path.parent)
            await store._seal_plain_rows()
        except BaseException:
            await connection.close()
            raise
        return store

    async def _seal_plain_rows(self) -> None:
        """Seal rows an older version stored in plain text, then rewrite the file (VACUUM) so
        no plain copy survives in free pages."""
        sealed = await self.db.run(self._seal_plain)
        if sealed:
            await self._sqlite.connection.execute("VACUUM")
            await self._sqlite.scrub()
            logger.info("sealed %d message(s) stored in plain text by an older version", sealed)

    async def _seal_plain(self, tx: Tx) -> int:
        rows = await tx.fetch(
            "SELECT chat_id, message_id, author, text FROM group_messages"
            " WHERE typeof(text) = 'text'"
        )
        for chat_id, message_id, author, text in rows:
            cipher = await self._cipher(tx, int(chat_id), create=True)
            await tx.execute(
                "UPDATE group_messages SET author = ?, text = ?"
                " WHERE chat_id = ? AND message_id = ?",
                cipher.seal(message_id, "author", author),
                cipher.seal(message_id, "text", text),
                chat_id,
                message_id,
            )
        return len(rows)
