"""Per-chat state in SQL, the same code over SQLite (one file) and PostgreSQL (asyncpg).

Each public method runs as one transaction through a :class:`Database`: the SQLite one serializes
them on its single connection, the PostgreSQL one takes a pooled connection, and retries the
whole transaction when the connection is lost (a server restart), so callers carry on.
Queries are written once with ``?`` parameters in the SQL both engines share.

Stored message texts and author names are sealed per group (:mod:`services.storage.crypto`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from cachetools import TTLCache

from services.core.types import (
    ChatMessage,
    ChatPreferences,
    DigestSettings,
    Length,
    Usage,
    UsageStats,
)
from services.storage.crypto import (
    KEY_FILE_NAME,
    GroupCipher,
    MasterKey,
    SealedDataError,
    StorageKeyError,
    load_master_key,
    new_key,
)

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="SQLStore")

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


class SQLStore:
    """The ``Store``, ``MessageArchive`` and ``DeliveryLedger`` protocols over a
    :class:`Database`; made by ``SQLiteStore.open`` or ``PostgresStore.open``."""

    newest_first = "rowid DESC"
    """How a table without a key is read newest first (engine-specific)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._master: MasterKey | None = None
        # Bounded: a bot in many groups keeps the keys of the busiest 10,000, and each for at
        # most 10 minutes (another worker's /forget is seen here within that time).
        self._ciphers: TTLCache[int, GroupCipher] = TTLCache(maxsize=10_000, ttl=600)

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
        cipher = self._ciphers.get(chat_id)
        if cipher is not None:
            return cipher
        assert self._master is not None, "the store is unlocked in open()"
        query = "SELECT wrapped FROM group_keys WHERE chat_id = ?"
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
            raise KeyError(chat_id)
        key = self._master.unwrap(bytes(row[0]), chat_id)
        cipher = self._ciphers[chat_id] = GroupCipher(key, chat_id)
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

    # ------------------------------------------------------------------ preferences

    @transaction
    async def get_preferences(self, tx: Tx, chat_id: int) -> ChatPreferences:
        """Preferences of a chat (defaults when it never chose)."""
        row = await tx.fetchrow(
            "SELECT method, length, language FROM chat_preferences WHERE chat_id = ?", chat_id
        )
        if row is None:
            return ChatPreferences()
        method, length, language = row
        try:
            parsed_length = Length(length)
        except ValueError:
            parsed_length = Length.MEDIUM
        return ChatPreferences(method=method, length=parsed_length, language=language)

    @transaction
    async def set_preferences(self, tx: Tx, chat_id: int, preferences: ChatPreferences) -> None:
        """Save a chat's preferences."""
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        await tx.execute(
            """
            INSERT INTO chat_preferences (chat_id, method, length, language, updated_at)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (chat_id) DO UPDATE SET method = excluded.method,
                length = excluded.length, language = excluded.language,
                updated_at = excluded.updated_at
            """,
            chat_id,
            preferences.method,
            preferences.length.value,
            preferences.language,
            now,
        )

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
                (m.chat_id, m.message_id, m.user_id, author, m.date, text, now, m.thread_id)
            )
        await tx.executemany(
            """
            INSERT INTO group_messages
                (chat_id, message_id, user_id, author, date, text, stored_at, thread_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
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
                )
                for _, message_id, user_id, author, date, text, thread in reversed(rows)
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
            "SELECT chat_id, message_id, user_id, author, date, text, thread_id"
            " FROM group_messages WHERE chat_id = ?"
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
        deleted = await tx.execute(
            "DELETE FROM group_messages WHERE chat_id = ? AND user_id = ?", chat_id, user_id
        )
        tx.deleted()
        return deleted

    @transaction
    async def forget_chat(self, tx: Tx, chat_id: int) -> None:
        """Delete everything stored about a group."""
        await self._shred_group(tx, chat_id)
        for table in ("digest_opt_outs", "digest_chats", "chat_preferences", "inbox", "outbox"):
            await tx.execute(f"DELETE FROM {table} WHERE chat_id = ?", chat_id)  # noqa: S608

    @transaction
    async def purge_stored_before(self, tx: Tx, cutoff: int) -> int:
        """Delete messages stored before Unix time ``cutoff``; returns how many."""
        deleted = await tx.execute("DELETE FROM group_messages WHERE stored_at < ?", cutoff)
        if deleted:
            tx.deleted()
        return deleted

    # ------------------------------------------------------------------ access and quotas

    @transaction
    async def access_rules(self, tx: Tx, subjects: list[str]) -> dict[str, bool]:
        """The stored allow / deny rule of each subject that has one."""
        if not subjects:
            return {}
        marks = ",".join("?" * len(subjects))
        rows = await tx.fetch(
            f"SELECT subject, allowed FROM access_rules WHERE subject IN ({marks})",  # noqa: S608
            *subjects,
        )
        return {str(subject): bool(allowed) for subject, allowed in rows}

    @transaction
    async def set_access_rule(self, tx: Tx, subject: str, allowed: bool, by: int) -> None:
        """Store an allow or deny rule, audited."""
        await tx.execute(
            "INSERT INTO access_rules (subject, allowed) VALUES (?, ?)"
            " ON CONFLICT (subject) DO UPDATE SET allowed = excluded.allowed",
            subject,
            int(allowed),
        )
        await self._audit(tx, by, "allow" if allowed else "deny", subject, "")

    @transaction
    async def quota_override(self, tx: Tx, user_id: int) -> int | None:
        """A user's own daily request quota, if set."""
        row = await tx.fetchrow("SELECT requests FROM quota_overrides WHERE user_id = ?", user_id)
        return int(row[0]) if row else None

    @transaction
    async def set_quota_override(self, tx: Tx, user_id: int, requests: int, by: int) -> None:
        """Set a user's daily request quota, audited."""
        await tx.execute(
            "INSERT INTO quota_overrides (user_id, requests) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET requests = excluded.requests",
            user_id,
            requests,
        )
        await self._audit(tx, by, "quota", str(user_id), str(requests))

    async def _audit(self, tx: Tx, admin_id: int, action: str, subject: str, value: str) -> None:
        await tx.execute(
            "INSERT INTO admin_audit (at, admin_id, action, subject, value)"
            " VALUES (?, ?, ?, ?, ?)",
            int(time.time()),
            admin_id,
            action,
            subject,
            value,
        )

    @transaction
    async def audit_log(self, tx: Tx, limit: int = 20) -> list[tuple[int, int, str, str, str]]:
        """The newest operator changes, newest first."""
        query = (
            "SELECT at, admin_id, action, subject, value FROM admin_audit"  # noqa: S608
            f" ORDER BY {self.newest_first} LIMIT ?"  # a class constant
        )
        rows = await tx.fetch(query, limit)
        return [
            (int(at), int(admin), str(action), str(subject), str(value))
            for at, admin, action, subject, value in rows
        ]

    @transaction
    async def usage(self, tx: Tx, day: str, scope: str, subject: int) -> Usage:
        """What ``subject`` used on ``day``."""
        row = await tx.fetchrow(
            "SELECT requests, chars, tokens, refused FROM usage_daily"
            " WHERE day = ? AND scope = ? AND subject = ?",
            day,
            scope,
            subject,
        )
        return Usage(*(int(v) for v in row)) if row else Usage()

    @transaction
    async def add_usage(
        self,
        tx: Tx,
        day: str,
        scope: str,
        subject: int,
        usage: Usage,
        once_key: str | None = None,
    ) -> None:
        """Add to the day's counters of ``subject`` (only once per ``once_key``, e.g. the
        update id and what is counted, in the same transaction)."""
        if once_key is not None:
            fresh = await tx.execute(
                "INSERT INTO usage_counted (usage_key, scope, subject, counted_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (usage_key, scope, subject) DO NOTHING",
                once_key,
                scope,
                subject,
                int(time.time()),
            )
            if not fresh:
                return
        await tx.execute(
            """
            INSERT INTO usage_daily (day, scope, subject, requests, chars, tokens, refused)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (day, scope, subject) DO UPDATE SET
                requests = usage_daily.requests + excluded.requests,
                chars = usage_daily.chars + excluded.chars,
                tokens = usage_daily.tokens + excluded.tokens,
                refused = usage_daily.refused + excluded.refused
            """,
            day,
            scope,
            subject,
            usage.requests,
            usage.chars,
            usage.tokens,
            usage.refused,
        )

    @transaction
    async def record_answer_time(self, tx: Tx, day: str, seconds: float) -> None:
        """Remember one request's handling time."""
        await tx.execute("INSERT INTO answer_times (day, seconds) VALUES (?, ?)", day, seconds)

    @transaction
    async def first_notice_today(self, tx: Tx, chat_id: int, day: str) -> bool:
        """True the first time ``chat_id`` is refused on ``day``."""
        added = await tx.execute(
            "INSERT INTO access_notices (chat_id, day) VALUES (?, ?)"
            " ON CONFLICT (chat_id, day) DO NOTHING",
            chat_id,
            day,
        )
        return added == 1

    @transaction
    async def usage_stats(self, tx: Tx, days: list[str]) -> UsageStats:
        """Counts over ``days`` (users and chats that made at least one request)."""
        marks = ",".join("?" * len(days))
        where = f"day IN ({marks})"
        rows = await tx.fetch(
            f"SELECT scope, COUNT(DISTINCT subject), SUM(requests), SUM(tokens), SUM(refused)"  # noqa: S608
            f" FROM usage_daily WHERE {where} AND requests > 0 GROUP BY scope",
            *days,
        )
        by_scope = {str(row[0]): row[1:] for row in rows}
        refused_row = await tx.fetchrow(
            f"SELECT SUM(refused) FROM usage_daily WHERE {where} AND scope = 'user'",  # noqa: S608
            *days,
        )
        times = [
            float(row[0])
            for row in await tx.fetch(
                f"SELECT seconds FROM answer_times WHERE {where} ORDER BY seconds",  # noqa: S608
                *days,
            )
        ]
        top = [
            (int(subject), int(total))
            for subject, total in await tx.fetch(
                f"SELECT subject, SUM(requests) AS total FROM usage_daily WHERE {where}"  # noqa: S608
                " AND scope = 'user' GROUP BY subject HAVING SUM(requests) > 0"
                " ORDER BY total DESC LIMIT 5",
                *days,
            )
        ]
        users = by_scope.get("user", (0, 0, 0, 0))
        chats = by_scope.get("chat", (0, 0, 0, 0))

        def percentile(share: float) -> float:
            return times[min(len(times) - 1, int(share * len(times)))] if times else 0.0

        return UsageStats(
            users=int(users[0] or 0),
            chats=int(chats[0] or 0),
            requests=int(users[1] or 0),
            tokens=int(users[2] or 0),
            refused=int((refused_row[0] if refused_row else 0) or 0),
            answer_p50=percentile(0.5),
            answer_p95=percentile(0.95),
            top_users=top,
        )

    async def close(self) -> None:
        """Close the connection(s)."""
        await self.db.close()
