"""The store's foundation: one transaction per method over a :class:`Database` (SQLite or
PostgreSQL), the master key and the per-group keys every sealed row depends on.

The store itself (:class:`services.storage.sql.SQLStore`) is this base plus one part per
concern: preferences, the message archive, delivery, access and quotas.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from cachetools import TTLCache

from services.storage.crypto import (
    KEY_FILE_NAME,
    GroupCipher,
    MasterKey,
    StorageKeyError,
    load_master_key,
    new_key,
)

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="StoreBase")

Row = Sequence[Any]


class Tx(Protocol):
    """One transaction's statements."""

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        """Every row of a query."""
        ...

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        """The first row of a query, if any."""
        ...

    async def execute(self, sql: str, *params: Any) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per parameter row."""
        ...

    def deleted(self) -> None:
        """Deleted rows' bytes should be scrubbed after the commit (where the engine can)."""
        ...


class Database(Protocol):
    """Runs transactions."""

    async def run(self, operation: Callable[[Tx], Awaitable[R]]) -> R:
        """Run ``operation`` in one transaction (committed when it returns)."""
        ...

    async def close(self) -> None:
        """Close the connection(s)."""
        ...


def transaction(
    method: Callable[Concatenate[S, Tx, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Run the method in one transaction; callers do not pass ``tx``."""

    @functools.wraps(method)
    async def run(store: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await store.db.run(lambda tx: method(store, tx, *args, **kwargs))

    return run


class StoreBase:
    """A :class:`Database`, the master key and the group ciphers (the keys section)."""

    newest_first = "rowid DESC"
    """How a table without a key is read newest first (engine-specific)."""
    key_row_lock = ""
    """Appended to the read of a group's key row: PostgreSQL holds it (``FOR SHARE``) until the
    transaction ends, so another worker's /forget waits for a write that uses the key, then
    deletes what it wrote. SQLite has one writer at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._master: MasterKey | None = None
        # Unwrapped keys, bounded (the busiest 10,000 groups, 10 minutes each). Only a cache of
        # the unwrapping: every use reads the key row in its own transaction and reuses the
        # cipher only while the row is the same, so after a /forget or a removal through
        # another worker no worker seals or reads with the deleted key.
        self._ciphers: TTLCache[int, tuple[bytes, GroupCipher]] = TTLCache(maxsize=10_000, ttl=600)

    @property
    def master(self) -> MasterKey | None:
        """The master key the store was unlocked with."""
        return self._master

    # ------------------------------------------------------------------ keys

    async def _unlock(self, storage_key: str | None, key_dir: Path) -> None:
        check = await self._key_check()
        master = load_master_key(key_dir, storage_key, has_sealed_data=check is not None)
        if check is None:
            check = await self._store_key_check(master.check_value())
        if not master.matches(check):
            source = "STORAGE_KEY" if storage_key else str(key_dir / KEY_FILE_NAME)
            raise StorageKeyError(
                f"{source} is not the key this database was encrypted with; stored messages "
                "cannot be read with it"
            )
        self._master = master

    @transaction
    async def _key_check(self, tx: Tx) -> bytes | None:
        row = await tx.fetchrow("SELECT value FROM storage_meta WHERE name = 'key_check'")
        return bytes(row[0]) if row else None

    @transaction
    async def _store_key_check(self, tx: Tx, value: bytes) -> bytes:
        """Store the key check unless another process did first; the one kept."""
        await tx.execute(
            "INSERT INTO storage_meta (name, value) VALUES ('key_check', ?)"
            " ON CONFLICT (name) DO NOTHING",
            value,
        )
        row = await tx.fetchrow("SELECT value FROM storage_meta WHERE name = 'key_check'")
        assert row is not None
        return bytes(row[0])

    async def _cipher(self, tx: Tx, chat_id: int, create: bool) -> GroupCipher:
        """The cipher of a group's key, creating (and storing, wrapped) the key if asked."""
        assert self._master is not None, "the store is unlocked in open()"
        query = f"SELECT wrapped FROM group_keys WHERE chat_id = ?{self.key_row_lock}"  # noqa: S608 - a class constant
        row = await tx.fetchrow(query, chat_id)
        if row is None and create:
            # Another worker may create the same group's key at the same moment: one wins.
            await tx.execute(
                "INSERT INTO group_keys (chat_id, wrapped) VALUES (?, ?)"
                " ON CONFLICT (chat_id) DO NOTHING",
                chat_id,
                self._master.wrap(new_key(), chat_id),
            )
            row = await tx.fetchrow(query, chat_id)
        if row is None:
            self._ciphers.pop(chat_id, None)
            raise KeyError(chat_id)
        wrapped = bytes(row[0])
        cached = self._ciphers.get(chat_id)
        if cached is not None and cached[0] == wrapped:
            return cached[1]
        cipher = GroupCipher(self._master.unwrap(wrapped, chat_id), chat_id)
        self._ciphers[chat_id] = (wrapped, cipher)
        return cipher

    async def _shred_group(self, tx: Tx, chat_id: int) -> None:
        """Delete a group's key and messages: leftover copies anywhere become unreadable."""
        self._ciphers.pop(chat_id, None)
        await tx.execute("DELETE FROM group_keys WHERE chat_id = ?", chat_id)
        await tx.execute("DELETE FROM group_messages WHERE chat_id = ?", chat_id)
        tx.deleted()

    @transaction
    async def rotate_master_key(self, tx: Tx, new: MasterKey) -> int:
        """Re-wrap every group key (and the key check) under ``new`` in one transaction;
        messages are not re-encrypted. Returns the number of group keys re-wrapped."""
        assert self._master is not None
        rows = await tx.fetch("SELECT chat_id, wrapped FROM group_keys")
        for chat_id, wrapped in rows:
            key = self._master.unwrap(bytes(wrapped), int(chat_id))
            await tx.execute(
                "UPDATE group_keys SET wrapped = ? WHERE chat_id = ?",
                new.wrap(key, int(chat_id)),
                chat_id,
            )
        await tx.execute(
            "UPDATE storage_meta SET value = ? WHERE name = 'key_check'", new.check_value()
        )
        tx.deleted()
        self._master = new
        return len(rows)

    async def close(self) -> None:
        """Close the connection(s)."""
        await self.db.close()
