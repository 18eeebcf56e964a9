"""Durable intake: the inbox of updates and what was sent for each (``DeliveryLedger``)."""

from __future__ import annotations

import logging
import time

from services.storage.base import StoreBase, Tx, transaction
from services.storage.crypto import (
    SealedDataError,
)

logger = logging.getLogger(__name__)


class DeliveryStore(StoreBase):
    """Durable intake: the inbox of updates and what was sent for each (``DeliveryLedger``)."""

    # ------------------------------------------------------------------ durable intake

    @transaction
    async def inbox_add(self, tx: Tx, updates: list[tuple[int, int, str]]) -> list[int]:
        """Keep (update_id, chat_id, JSON) updates; returns the ids that were new (a
        duplicate delivery of a kept update is ignored)."""
        now = int(time.time())
        new: list[int] = []
        for update_id, chat_id, payload in updates:
            cipher = await self._cipher(tx, chat_id, create=True)
            sealed = cipher.seal(update_id, "update", payload)
            added = await tx.execute(
                "INSERT INTO inbox (update_id, chat_id, payload, received_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (update_id) DO NOTHING",
                update_id,
                chat_id,
                sealed,
                now,
            )
            if added:
                new.append(update_id)
        return new

    @transaction
    async def inbox_done(self, tx: Tx, update_ids: list[int]) -> None:
        """Mark updates handled; their text is deleted, only the id stays (for dedupe)."""
        await tx.executemany(
            "UPDATE inbox SET done = 1, payload = ? WHERE update_id = ?",
            [(b"", u) for u in update_ids],
        )

    @transaction
    async def inbox_pending(self, tx: Tx) -> list[tuple[int, str]]:
        """(update_id, JSON) of every update not yet handled, oldest first."""
        rows = await tx.fetch(
            "SELECT update_id, chat_id, payload FROM inbox WHERE done = 0 ORDER BY update_id"
        )
        pending: list[tuple[int, str]] = []
        for update_id, chat_id, payload in rows:
            try:
                cipher = await self._cipher(tx, int(chat_id), create=False)
                pending.append((update_id, cipher.open(update_id, "update", bytes(payload))))
            except (KeyError, SealedDataError):  # the chat was forgotten since: drop it
                await tx.execute(
                    "UPDATE inbox SET done = 1, payload = ? WHERE update_id = ?", b"", update_id
                )
        return pending

    @transaction
    async def sent_result(self, tx: Tx, update_id: int, seq: int) -> str | None:
        """The recorded Bot API result of the ``seq``-th message sent for an update."""
        row = await tx.fetchrow(
            "SELECT chat_id, result FROM outbox WHERE update_id = ? AND seq = ?", update_id, seq
        )
        if row is None:
            return None
        try:
            cipher = await self._cipher(tx, int(row[0]), create=False)
            return cipher.open(update_id, f"sent:{seq}", bytes(row[1]))
        except (KeyError, SealedDataError):
            return None

    @transaction
    async def record_sent(
        self, tx: Tx, update_id: int, seq: int, chat_id: int, result: str
    ) -> None:
        """Record what was sent for an update (its Bot API result, sealed)."""
        cipher = await self._cipher(tx, chat_id, create=True)
        await tx.execute(
            "INSERT INTO outbox (update_id, seq, chat_id, result, recorded_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (update_id, seq) DO UPDATE SET"
            " chat_id = excluded.chat_id, result = excluded.result,"
            " recorded_at = excluded.recorded_at",
            update_id,
            seq,
            chat_id,
            cipher.seal(update_id, f"sent:{seq}", result),
            int(time.time()),
        )

    @transaction
    async def purge_delivery(self, tx: Tx, before: int) -> int:
        """Forget updates handled and received before Unix time ``before``, with what was sent
        for them (a duplicate that old is not coming); returns how many."""
        rows = await tx.fetch(
            "SELECT update_id FROM inbox WHERE done = 1 AND received_at < ?", before
        )
        old = [(int(row[0]),) for row in rows]
        await tx.executemany("DELETE FROM outbox WHERE update_id = ?", old)
        await tx.executemany("DELETE FROM inbox WHERE update_id = ?", old)
        # Sends of updates that came through the Redis queue (no inbox row), by age.
        queued = await tx.execute(
            "DELETE FROM outbox WHERE recorded_at > 0 AND recorded_at < ?"
            " AND update_id NOT IN (SELECT update_id FROM inbox)",
            before,
        )
        await tx.execute("DELETE FROM usage_counted WHERE counted_at < ?", before)
        return len(old) + queued
