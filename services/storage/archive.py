"""The sealed message archive of groups with digests on: settings, schedules,
messages, opt-outs, forgetting and retention."""

from __future__ import annotations

import asyncio
import logging
import time

from services.core.types import (
    ChatMessage,
    DigestSettings,
)
from services.storage.base import Row, StoreBase, Tx, transaction
from services.storage.crypto import (
    GroupCipher,
)

logger = logging.getLogger(__name__)


class ArchiveStore(StoreBase):
    """The sealed message archive of groups with digests on: settings, schedules."""

    # ------------------------------------------------------------------ group digests

    @transaction
    async def digest_settings(self, tx: Tx, chat_id: int) -> DigestSettings:
        """A group's digest settings (disabled when never set)."""
        row = await tx.fetchrow(
            "SELECT enabled, schedule, timezone, last_digest_date FROM digest_chats"
            " WHERE chat_id = ?",
            chat_id,
        )
        if row is None:
            return DigestSettings(chat_id)
        enabled, schedule, timezone, last = row
        return DigestSettings(chat_id, bool(enabled), schedule, timezone, int(last))

    @transaction
    async def set_digest_enabled(self, tx: Tx, chat_id: int, enabled: bool) -> None:
        """Turn storing and digests on or off for a group (off deletes its messages)."""
        await tx.execute(
            """
            INSERT INTO digest_chats (chat_id, enabled) VALUES (?, ?)
            ON CONFLICT (chat_id) DO UPDATE SET enabled = excluded.enabled
            """,
            chat_id,
            int(enabled),
        )
        if not enabled:
            await self._shred_group(tx, chat_id)

    @transaction
    async def set_schedule(self, tx: Tx, chat_id: int, schedule: str, timezone: str) -> None:
        """Store a daily digest time ("" to switch it off)."""
        await tx.execute(
            """
            INSERT INTO digest_chats (chat_id, schedule, timezone) VALUES (?, ?, ?)
            ON CONFLICT (chat_id) DO UPDATE SET schedule = excluded.schedule,
                timezone = excluded.timezone
            """,
            chat_id,
            schedule,
            timezone,
        )

    @transaction
    async def scheduled_chats(self, tx: Tx) -> list[DigestSettings]:
        """Every enabled group with a schedule."""
        rows = await tx.fetch(
            "SELECT chat_id, schedule, timezone, last_digest_date FROM digest_chats"
            " WHERE enabled = 1 AND schedule != ''"
        )
        return [
            DigestSettings(int(chat_id), True, schedule, timezone, int(last))
            for chat_id, schedule, timezone, last in rows
        ]

    @transaction
    async def mark_digest(self, tx: Tx, chat_id: int, last_date: int) -> None:
        """Remember the newest message date a digest covered."""
        await tx.execute(
            "UPDATE digest_chats SET last_digest_date = ? WHERE chat_id = ?"
            " AND last_digest_date < ?",
            last_date,
            chat_id,
            last_date,
        )

    @transaction
    async def save_messages(self, tx: Tx, messages: list[ChatMessage]) -> int:
        """Insert or update (edits) messages, skipping opted-out authors; returns how many."""
        if not messages:
            return 0
        opted_out: set[tuple[int, int]] = set()
        for chat_id in {m.chat_id for m in messages}:
            rows = await tx.fetch("SELECT user_id FROM digest_opt_outs WHERE chat_id = ?", chat_id)
            opted_out.update((chat_id, int(row[0])) for row in rows)
        now = int(time.time())
        kept = []
        for m in messages:
            if (m.chat_id, m.user_id) in opted_out:
                continue
            cipher = await self._cipher(tx, m.chat_id, create=True)
            author = cipher.seal(m.message_id, "author", m.author)
            text = cipher.seal(m.message_id, "text", m.text)
            kept.append(
                (
                    m.chat_id,
                    m.message_id,
                    m.user_id,
                    author,
                    m.date,
                    text,
                    now,
                    m.thread_id,
                    m.reply_to,
                    m.reply_to_user,
                    int(m.shared_document),
                )
            )
        await tx.executemany(
            """
            INSERT INTO group_messages
                (chat_id, message_id, user_id, author, date, text, stored_at, thread_id,
                 reply_to, reply_to_user, shared_document)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (chat_id, message_id) DO UPDATE SET text = excluded.text,
                author = excluded.author
            """,
            kept,
        )
        return len(kept)

    async def messages(
        self,
        chat_id: int,
        last: int | None = None,
        since: int | None = None,
        until: int | None = None,
        first_id: int | None = None,
        last_id: int | None = None,
        thread_id: int | None = None,
    ) -> list[ChatMessage]:
        """A window of a group's messages, oldest first: the newest ``last`` of those after
        ``since`` and before ``until`` (Unix times), with ids from ``first_id`` to ``last_id``,
        in forum thread ``thread_id``."""
        rows, cipher = await self._message_rows(
            chat_id, last, since, until, first_id, last_id, thread_id
        )
        if cipher is None:
            return []

        def unseal() -> list[ChatMessage]:
            return [
                ChatMessage(
                    chat_id,
                    message_id,
                    user_id,
                    cipher.open(message_id, "author", bytes(author)),
                    date,
                    cipher.open(message_id, "text", bytes(text)),
                    thread,
                    replied,
                    replied_by,
                    reactions,
                    bool(pinned),
                    bool(shared),
                )
                for (
                    _,
                    message_id,
                    user_id,
                    author,
                    date,
                    text,
                    thread,
                    replied,
                    replied_by,
                    reactions,
                    pinned,
                    shared,
                ) in reversed(rows)
            ]

        # 10,000 rows take ~0.1 s to open: off the event loop, so other chats are not held up.
        return unseal() if len(rows) < 200 else await asyncio.to_thread(unseal)

    @transaction
    async def _message_rows(
        self,
        tx: Tx,
        chat_id: int,
        last: int | None,
        since: int | None,
        until: int | None,
        first_id: int | None,
        last_id: int | None,
        thread_id: int | None,
    ) -> tuple[list[Row], GroupCipher | None]:
        query = (
            "SELECT chat_id, message_id, user_id, author, date, text, thread_id, reply_to,"
            " reply_to_user, reactions, pinned, shared_document FROM group_messages"
            " WHERE chat_id = ?"
        )
        parameters: list[int] = [chat_id]
        for clause, value in (
            (" AND date > ?", since),
            (" AND date < ?", until),
            (" AND message_id >= ?", first_id),
            (" AND message_id <= ?", last_id),
            (" AND thread_id = ?", thread_id),
        ):
            if value is not None:
                query += clause
                parameters.append(value)
        query += " ORDER BY date DESC, message_id DESC"
        if last is not None:
            query += " LIMIT ?"
            parameters.append(last)
        rows = await tx.fetch(query, *parameters)
        if not rows:
            return [], None
        return rows, await self._cipher(tx, chat_id, create=False)

    # ------------------------------------------------------------------ signals

    @transaction
    async def set_reactions(
        self, tx: Tx, chat_id: int, message_id: int, total: int | None = None, change: int = 0
    ) -> bool:
        """Set a kept message's reaction count to ``total`` (anonymous counts) or move it by
        ``change`` (one member's reactions); False when the message is not kept."""
        if total is not None:
            done = await tx.execute(
                "UPDATE group_messages SET reactions = ? WHERE chat_id = ? AND message_id = ?",
                max(0, total),
                chat_id,
                message_id,
            )
        else:
            done = await tx.execute(
                "UPDATE group_messages SET reactions ="
                " CASE WHEN reactions + ? < 0 THEN 0 ELSE reactions + ? END"
                " WHERE chat_id = ? AND message_id = ?",
                change,
                change,
                chat_id,
                message_id,
            )
        return done > 0

    @transaction
    async def mark_pinned(self, tx: Tx, chat_id: int, message_id: int) -> bool:
        """Remember that a kept message was pinned; False when it is not kept."""
        done = await tx.execute(
            "UPDATE group_messages SET pinned = 1 WHERE chat_id = ? AND message_id = ?",
            chat_id,
            message_id,
        )
        return done > 0

    # ------------------------------------------------------------------ catch-up

    @transaction
    async def set_catchup_auto(
        self, tx: Tx, chat_id: int, user_id: int, enabled: bool, now: int
    ) -> None:
        """Opt a member in to (or out of) the automatic catch-up."""
        if not enabled:
            await tx.execute(
                "DELETE FROM catchup_auto WHERE chat_id = ? AND user_id = ?", chat_id, user_id
            )
            return
        await tx.execute(
            "INSERT INTO catchup_auto (chat_id, user_id, last_seen) VALUES (?, ?, ?)"
            " ON CONFLICT (chat_id, user_id) DO NOTHING",
            chat_id,
            user_id,
            now,
        )

    @transaction
    async def catchup_seen(self, tx: Tx, chat_id: int, user_id: int, now: int) -> int | None:
        """A member opted in to the automatic catch-up wrote at ``now``: when they wrote
        before (None when they did not opt in)."""
        rows = await tx.fetch(
            "SELECT last_seen FROM catchup_auto WHERE chat_id = ? AND user_id = ?",
            chat_id,
            user_id,
        )
        if not rows:
            return None
        await tx.execute(
            "UPDATE catchup_auto SET last_seen = ? WHERE chat_id = ? AND user_id = ?",
            now,
            chat_id,
            user_id,
        )
        return int(rows[0][0])

    # ------------------------------------------------------------------ deletion

    @transaction
    async def set_opt_out(self, tx: Tx, chat_id: int, user_id: int, opted_out: bool) -> int:
        """Record a user's choice; opting out deletes their messages. Returns rows deleted."""
        if not opted_out:
            await tx.execute(
                "DELETE FROM digest_opt_outs WHERE chat_id = ? AND user_id = ?", chat_id, user_id
            )
            return 0
        await tx.execute(
            "INSERT INTO digest_opt_outs (chat_id, user_id) VALUES (?, ?)"
            " ON CONFLICT (chat_id, user_id) DO NOTHING",
            chat_id,
            user_id,
        )
        return await self._delete_user(tx, chat_id, user_id)

    @transaction
    async def forget_user(self, tx: Tx, chat_id: int, user_id: int) -> int:
        """Delete every stored message of a user in a group; returns how many."""
        return await self._delete_user(tx, chat_id, user_id)

    async def _delete_user(self, tx: Tx, chat_id: int, user_id: int) -> int:
        await tx.execute(
            "DELETE FROM catchup_auto WHERE chat_id = ? AND user_id = ?", chat_id, user_id
        )
        deleted = await tx.execute(
            "DELETE FROM group_messages WHERE chat_id = ? AND user_id = ?", chat_id, user_id
        )
        tx.deleted()
        return deleted

    @transaction
    async def forget_chat(self, tx: Tx, chat_id: int) -> None:
        """Delete everything stored about a group."""
        await self._shred_group(tx, chat_id)
        for table in (
            "digest_opt_outs",
            "digest_chats",
            "chat_preferences",
            "inbox",
            "outbox",
            "catchup_auto",
        ):
            await tx.execute(f"DELETE FROM {table} WHERE chat_id = ?", chat_id)  # noqa: S608

    @transaction
    async def purge_stored_before(self, tx: Tx, cutoff: int) -> int:
        """Delete messages stored before Unix time ``cutoff``; returns how many."""
        deleted = await tx.execute("DELETE FROM group_messages WHERE stored_at < ?", cutoff)
        if deleted:
            tx.deleted()
        return deleted
