"""Per-chat state in a SQLite file under ``DATA_DIR``, accessed asynchronously (aiosqlite).

Stored message texts and author names are sealed per group (:mod:`services.storage.crypto`);
deletions run with ``secure_delete`` on and end with a truncating WAL checkpoint, so deleted
rows leave no readable bytes in the database file or its write-ahead log.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiosqlite

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


def serialized(
    method: Callable[Concatenate[SQLiteStore, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SQLiteStore, P], Coroutine[Any, Any, R]]:
    """One operation at a time on the connection: updates are handled concurrently, and an
    open cursor interleaved with another task's commit makes sqlite3 fail ("API misuse")."""

    @functools.wraps(method)
    async def run(store: SQLiteStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        async with store._lock:
            return await method(store, *args, **kwargs)

    return run


# Each entry moves the schema one version up; PRAGMA user_version records where a file is.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chat_preferences (
        chat_id INTEGER PRIMARY KEY,
        method TEXT NOT NULL DEFAULT '',
        length TEXT NOT NULL DEFAULT 'medium',
        language TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL DEFAULT (datetime('now'))
    );
    """,
    """
    CREATE TABLE digest_chats (
        chat_id INTEGER PRIMARY KEY,
        enabled INTEGER NOT NULL DEFAULT 0,
        schedule TEXT NOT NULL DEFAULT '',
        timezone TEXT NOT NULL DEFAULT '',
        last_digest_date INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE group_messages (
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        author TEXT NOT NULL,
        date INTEGER NOT NULL,
        text TEXT NOT NULL,
        stored_at INTEGER NOT NULL,
        PRIMARY KEY (chat_id, message_id)
    );
    CREATE INDEX group_messages_by_date ON group_messages (chat_id, date);
    CREATE INDEX group_messages_by_user ON group_messages (chat_id, user_id);
    CREATE INDEX group_messages_by_stored ON group_messages (stored_at);
    CREATE TABLE digest_opt_outs (
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (chat_id, user_id)
    );
    """,
    # group_messages.text and .author hold AES-GCM blobs from here on (see crypto.py);
    # rows written in plain text by older versions are sealed when the store opens.
    """
    CREATE TABLE group_keys (
        chat_id INTEGER PRIMARY KEY,
        wrapped BLOB NOT NULL
    );
    CREATE TABLE storage_meta (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    """,
    # Access, quotas and the operator's view: counts and ids only, never message text.
    """
    CREATE TABLE access_rules (
        subject TEXT PRIMARY KEY,
        allowed INTEGER NOT NULL
    );
    CREATE TABLE quota_overrides (
        user_id INTEGER PRIMARY KEY,
        requests INTEGER NOT NULL
    );
    CREATE TABLE usage_daily (
        day TEXT NOT NULL,
        scope TEXT NOT NULL,
        subject INTEGER NOT NULL,
        requests INTEGER NOT NULL DEFAULT 0,
        chars INTEGER NOT NULL DEFAULT 0,
        tokens INTEGER NOT NULL DEFAULT 0,
        refused INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, scope, subject)
    );
    CREATE TABLE answer_times (day TEXT NOT NULL, seconds REAL NOT NULL);
    CREATE INDEX answer_times_by_day ON answer_times (day);
    CREATE TABLE access_notices (
        chat_id INTEGER NOT NULL,
        day TEXT NOT NULL,
        PRIMARY KEY (chat_id, day)
    );
    CREATE TABLE admin_audit (
        at INTEGER NOT NULL,
        admin_id INTEGER NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        value TEXT NOT NULL
    );
    """,
    # Forum supergroups: the topic thread a message belongs to (0 outside forums).
    """
    ALTER TABLE group_messages ADD COLUMN thread_id INTEGER NOT NULL DEFAULT 0;
    """,
    # Durable intake: each update is kept (sealed with its chat's key) before Telegram is told
    # it arrived, until it was handled; and what was sent for it, so a re-run sends nothing twice.
    """
    CREATE TABLE inbox (
        update_id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        payload BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX inbox_pending ON inbox (done, update_id);
    CREATE TABLE outbox (
        update_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        result BLOB NOT NULL,
        PRIMARY KEY (update_id, seq)
    );
    """,
)


class SQLiteStore:
    """The ``Store`` and ``MessageArchive`` protocols on one SQLite file.

    Use :meth:`open` to create it; the file and its directory are created on first run.
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._lock = asyncio.Lock()
        self._master: MasterKey | None = None
        self._ciphers: dict[int, GroupCipher] = {}

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
        connection = await aiosqlite.connect(path)
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            # Deleted content is overwritten with zeros instead of left in free space.
            await connection.execute("PRAGMA secure_delete=ON")
            store = cls(connection, path)
            await store._migrate()
            await store._unlock(storage_key, key_dir or path.parent)
        except BaseException:
            await connection.close()
            raise
        return store

    async def _unlock(self, storage_key: str | None, key_dir: Path) -> None:
        check = await self._meta("key_check")
        master = load_master_key(key_dir, storage_key, has_sealed_data=check is not None)
        if check is None:
            await self._db.execute(
                "INSERT INTO storage_meta (name, value) VALUES ('key_check', ?)",
                (master.check_value(),),
            )
            await self._db.commit()
        elif not master.matches(check):
            source = "STORAGE_KEY" if storage_key else str(key_dir / KEY_FILE_NAME)
            raise StorageKeyError(
                f"{source} is not the key this database was encrypted with; stored messages "
                "cannot be read with it"
            )
        self._master = master
        await self._seal_plain_rows()

    async def _meta(self, name: str) -> bytes | None:
        async with self._db.execute(
            "SELECT value FROM storage_meta WHERE name = ?", (name,)
        ) as cursor:
            row = await cursor.fetchone()
        return bytes(row[0]) if row else None

    async def _seal_plain_rows(self) -> None:
        """Seal rows an older version stored in plain text, then rewrite the file (VACUUM) so
        no plain copy survives in free pages."""
        async with self._db.execute(
            "SELECT chat_id, message_id, author, text FROM group_messages"
            " WHERE typeof(text) = 'text'"
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            return
        for chat_id, message_id, author, text in rows:
            cipher = await self._cipher(int(chat_id), create=True)
            await self._db.execute(
                "UPDATE group_messages SET author = ?, text = ?"
                " WHERE chat_id = ? AND message_id = ?",
                (
                    cipher.seal(message_id, "author", author),
                    cipher.seal(message_id, "text", text),
                    chat_id,
                    message_id,
                ),
            )
        await self._db.commit()
        await self._db.execute("VACUUM")
        await self._scrub()
        logger.info("sealed %d message(s) stored in plain text by an older version", len(rows))

    async def _cipher(self, chat_id: int, create: bool) -> GroupCipher:
        """The cipher of a group's key, creating (and storing, wrapped) the key if asked."""
        cipher = self._ciphers.get(chat_id)
        if cipher is not None:
            return cipher
        assert self._master is not None, "the store is unlocked in open()"
        async with self._db.execute(
            "SELECT wrapped FROM group_keys WHERE chat_id = ?", (chat_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is not None:
            key = self._master.unwrap(bytes(row[0]), chat_id)
        elif create:
            key = new_key()
            await self._db.execute(
                "INSERT INTO group_keys (chat_id, wrapped) VALUES (?, ?)",
                (chat_id, self._master.wrap(key, chat_id)),
            )
        else:
            raise KeyError(chat_id)
        cipher = self._ciphers[chat_id] = GroupCipher(key, chat_id)
        return cipher

    async def _scrub(self) -> None:
        """After deletions: copy the write-ahead log into the (zeroed) pages and truncate it,
        so the deleted rows' bytes are neither in the WAL nor in the database file."""
        async with self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
            busy, _, _ = await cursor.fetchone() or (0, 0, 0)
        if busy:
            logger.warning("WAL checkpoint was blocked by a reader; deleted pages remain in it")

    async def _shred_group(self, chat_id: int) -> None:
        """Delete a group's key and messages: leftover copies anywhere become unreadable."""
        self._ciphers.pop(chat_id, None)
        await self._db.execute("DELETE FROM group_keys WHERE chat_id = ?", (chat_id,))
        await self._db.execute("DELETE FROM group_messages WHERE chat_id = ?", (chat_id,))

    @serialized
    async def rotate_master_key(self, new: MasterKey) -> int:
        """Re-wrap every group key (and the key check) under ``new`` in one transaction;
        messages are not re-encrypted. Returns the number of group keys re-wrapped."""
        assert self._master is not None
        async with self._db.execute("SELECT chat_id, wrapped FROM group_keys") as cursor:
            rows = list(await cursor.fetchall())
        for chat_id, wrapped in rows:
            key = self._master.unwrap(bytes(wrapped), int(chat_id))
            await self._db.execute(
                "UPDATE group_keys SET wrapped = ? WHERE chat_id = ?",
                (new.wrap(key, int(chat_id)), chat_id),
            )
        await self._db.execute(
            "UPDATE storage_meta SET value = ? WHERE name = 'key_check'", (new.check_value(),)
        )
        await self._db.commit()
        await self._scrub()
        self._master = new
        return len(rows)

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            logger.info("migrating %s to schema version %d", self.path.name, number)
            await self._db.executescript(script)
            await self._db.execute(f"PRAGMA user_version = {number}")
        await self._db.commit()

    @serialized
    async def get_preferences(self, chat_id: int) -> ChatPreferences:
        """Preferences of a chat (defaults when it never chose)."""
        async with self._db.execute(
            "SELECT method, length, language FROM chat_preferences WHERE chat_id = ?", (chat_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return ChatPreferences()
        method, length, language = row
        try:
            parsed_length = Length(length)
        except ValueError:
            parsed_length = Length.MEDIUM
        return ChatPreferences(method=method, length=parsed_length, language=language)

    @serialized
    async def set_preferences(self, chat_id: int, preferences: ChatPreferences) -> None:
        """Save a chat's preferences."""
        await self._db.execute(
            """
            INSERT INTO chat_preferences (chat_id, method, length, language) VALUES (?, ?, ?, ?)
            ON CONFLICT (chat_id) DO UPDATE SET method = excluded.method,
                length = excluded.length, language = excluded.language,
                updated_at = datetime('now')
            """,
            (chat_id, preferences.method, preferences.length.value, preferences.language),
        )
        await self._db.commit()

    # ------------------------------------------------------------------ group digests

    @serialized
    async def digest_settings(self, chat_id: int) -> DigestSettings:
        """A group's digest settings (disabled when never set)."""
        async with self._db.execute(
            "SELECT enabled, schedule, timezone, last_digest_date FROM digest_chats"
            " WHERE chat_id = ?",
            (chat_id,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return DigestSettings(chat_id)
        enabled, schedule, timezone, last = row
        return DigestSettings(chat_id, bool(enabled), schedule, timezone, int(last))

    @serialized
    async def set_digest_enabled(self, chat_id: int, enabled: bool) -> None:
        """Turn storing and digests on or off for a group (off deletes its messages)."""
        await self._db.execute(
            """
            INSERT INTO digest_chats (chat_id, enabled) VALUES (?, ?)
            ON CONFLICT (chat_id) DO UPDATE SET enabled = excluded.enabled
            """,
            (chat_id, int(enabled)),
        )
        if not enabled:
            await self._shred_group(chat_id)
        await self._db.commit()
        if not enabled:
            await self._scrub()

    @serialized
    async def set_schedule(self, chat_id: int, schedule: str, timezone: str) -> None:
        """Store a daily digest time ("" to switch it off)."""
        await self._db.execute(
            """
            INSERT INTO digest_chats (chat_id, schedule, timezone) VALUES (?, ?, ?)
            ON CONFLICT (chat_id) DO UPDATE SET schedule = excluded.schedule,
                timezone = excluded.timezone
            """,
            (chat_id, schedule, timezone),
        )
        await self._db.commit()

    @serialized
    async def scheduled_chats(self) -> list[DigestSettings]:
        """Every enabled group with a schedule."""
        async with self._db.execute(
            "SELECT chat_id, schedule, timezone, last_digest_date FROM digest_chats"
            " WHERE enabled = 1 AND schedule != ''"
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            DigestSettings(int(chat_id), True, schedule, timezone, int(last))
            for chat_id, schedule, timezone, last in rows
        ]

    @serialized
    async def mark_digest(self, chat_id: int, last_date: int) -> None:
        """Remember the newest message date a digest covered."""
        await self._db.execute(
            "UPDATE digest_chats SET last_digest_date = max(last_digest_date, ?)"
            " WHERE chat_id = ?",
            (last_date, chat_id),
        )
        await self._db.commit()

    @serialized
    async def save_messages(self, messages: list[ChatMessage]) -> int:
        """Insert or update (edits) messages, skipping opted-out authors; returns how many."""
        if not messages:
            return 0
        chat_ids = {m.chat_id for m in messages}
        opted_out: set[tuple[int, int]] = set()
        for chat_id in chat_ids:
            async with self._db.execute(
                "SELECT user_id FROM digest_opt_outs WHERE chat_id = ?", (chat_id,)
            ) as cursor:
                opted_out.update((chat_id, int(row[0])) for row in await cursor.fetchall())
        now = int(time.time())
        rows = []
        for m in messages:
            if (m.chat_id, m.user_id) in opted_out:
                continue
            cipher = await self._cipher(m.chat_id, create=True)
            author = cipher.seal(m.message_id, "author", m.author)
            text = cipher.seal(m.message_id, "text", m.text)
            rows.append(
                (m.chat_id, m.message_id, m.user_id, author, m.date, text, now, m.thread_id)
            )
        await self._db.executemany(
            """
            INSERT INTO group_messages
                (chat_id, message_id, user_id, author, date, text, stored_at, thread_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (chat_id, message_id) DO UPDATE SET text = excluded.text,
                author = excluded.author
            """,
            rows,
        )
        await self._db.commit()
        return len(rows)

    @serialized
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
        async with self._db.execute(query, parameters) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            return []
        cipher = await self._cipher(chat_id, create=False)

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

    # ------------------------------------------------------------------ durable intake

    @serialized
    async def inbox_add(self, updates: list[tuple[int, int, str]]) -> list[int]:
        """Keep (update_id, chat_id, JSON) updates; returns the ids that were new (a
        duplicate delivery of a kept update is ignored)."""
        now = int(time.time())
        new: list[int] = []
        for update_id, chat_id, payload in updates:
            cipher = await self._cipher(chat_id, create=True)
            sealed = cipher.seal(update_id, "update", payload)
            cursor = await self._db.execute(
                "INSERT OR IGNORE INTO inbox (update_id, chat_id, payload, received_at)"
                " VALUES (?, ?, ?, ?)",
                (update_id, chat_id, sealed, now),
            )
            if cursor.rowcount:
                new.append(update_id)
        await self._db.commit()
        return new

    @serialized
    async def inbox_done(self, update_ids: list[int]) -> None:
        """Mark updates handled; their text is deleted, only the id stays (for dedupe)."""
        await self._db.executemany(
            "UPDATE inbox SET done = 1, payload = x'' WHERE update_id = ?",
            [(u,) for u in update_ids],
        )
        await self._db.commit()

    @serialized
    async def inbox_pending(self) -> list[tuple[int, str]]:
        """(update_id, JSON) of every update not yet handled, oldest first."""
        async with self._db.execute(
            "SELECT update_id, chat_id, payload FROM inbox WHERE done = 0 ORDER BY update_id"
        ) as cursor:
            rows = list(await cursor.fetchall())
        pending: list[tuple[int, str]] = []
        for update_id, chat_id, payload in rows:
            try:
                cipher = await self._cipher(int(chat_id), create=False)
                pending.append((update_id, cipher.open(update_id, "update", bytes(payload))))
            except (KeyError, SealedDataError):  # the chat was forgotten since: drop it
                await self._db.execute(
                    "UPDATE inbox SET done = 1, payload = x'' WHERE update_id = ?", (update_id,)
                )
        await self._db.commit()
        return pending

    @serialized
    async def sent_result(self, update_id: int, seq: int) -> str | None:
        """The recorded Bot API result of the ``seq``-th message sent for an update."""
        async with self._db.execute(
            "SELECT chat_id, result FROM outbox WHERE update_id = ? AND seq = ?", (update_id, seq)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        try:
            cipher = await self._cipher(int(row[0]), create=False)
            return cipher.open(update_id, f"sent:{seq}", bytes(row[1]))
        except (KeyError, SealedDataError):
            return None

    @serialized
    async def record_sent(self, update_id: int, seq: int, chat_id: int, result: str) -> None:
        """Record what was sent for an update (its Bot API result, sealed)."""
        cipher = await self._cipher(chat_id, create=True)
        await self._db.execute(
            "INSERT OR REPLACE INTO outbox (update_id, seq, chat_id, result) VALUES (?, ?, ?, ?)",
            (update_id, seq, chat_id, cipher.seal(update_id, f"sent:{seq}", result)),
        )
        await self._db.commit()

    @serialized
    async def purge_delivery(self, before: int) -> int:
        """Forget updates handled and received before Unix time ``before``, with what was sent
        for them (a duplicate that old is not coming); returns how many."""
        async with self._db.execute(
            "SELECT update_id FROM inbox WHERE done = 1 AND received_at < ?", (before,)
        ) as cursor:
            old = [(int(row[0]),) for row in await cursor.fetchall()]
        await self._db.executemany("DELETE FROM outbox WHERE update_id = ?", old)
        await self._db.executemany("DELETE FROM inbox WHERE update_id = ?", old)
        await self._db.commit()
        return len(old)

    @serialized
    async def set_opt_out(self, chat_id: int, user_id: int, opted_out: bool) -> int:
        """Record a user's choice; opting out deletes their messages. Returns rows deleted."""
        if not opted_out:
            await self._db.execute(
                "DELETE FROM digest_opt_outs WHERE chat_id = ? AND user_id = ?",
                (chat_id, user_id),
            )
            await self._db.commit()
            return 0
        await self._db.execute(
            "INSERT OR IGNORE INTO digest_opt_outs (chat_id, user_id) VALUES (?, ?)",
            (chat_id, user_id),
        )
        return await self._delete_user(chat_id, user_id)

    @serialized
    async def forget_user(self, chat_id: int, user_id: int) -> int:
        """Delete every stored message of a user in a group; returns how many."""
        return await self._delete_user(chat_id, user_id)

    async def _delete_user(self, chat_id: int, user_id: int) -> int:
        cursor = await self._db.execute(
            "DELETE FROM group_messages WHERE chat_id = ? AND user_id = ?", (chat_id, user_id)
        )
        await self._db.commit()
        await self._scrub()
        return cursor.rowcount

    @serialized
    async def forget_chat(self, chat_id: int) -> None:
        """Delete everything stored about a group."""
        await self._shred_group(chat_id)
        for table in ("digest_opt_outs", "digest_chats", "chat_preferences", "inbox", "outbox"):
            await self._db.execute(f"DELETE FROM {table} WHERE chat_id = ?", (chat_id,))  # noqa: S608
        await self._db.commit()
        await self._scrub()

    @serialized
    async def purge_stored_before(self, cutoff: int) -> int:
        """Delete messages stored before Unix time ``cutoff``; returns how many."""
        cursor = await self._db.execute(
            "DELETE FROM group_messages WHERE stored_at < ?", (cutoff,)
        )
        await self._db.commit()
        if cursor.rowcount:
            await self._scrub()
        return cursor.rowcount

    # ------------------------------------------------------------------ access and quotas

    @serialized
    async def access_rules(self, subjects: list[str]) -> dict[str, bool]:
        """The stored allow / deny rule of each subject that has one."""
        if not subjects:
            return {}
        marks = ",".join("?" * len(subjects))
        async with self._db.execute(
            f"SELECT subject, allowed FROM access_rules WHERE subject IN ({marks})",  # noqa: S608
            subjects,
        ) as cursor:
            return {str(subject): bool(allowed) for subject, allowed in await cursor.fetchall()}

    @serialized
    async def set_access_rule(self, subject: str, allowed: bool, by: int) -> None:
        """Store an allow or deny rule, audited."""
        await self._db.execute(
            "INSERT INTO access_rules (subject, allowed) VALUES (?, ?)"
            " ON CONFLICT (subject) DO UPDATE SET allowed = excluded.allowed",
            (subject, int(allowed)),
        )
        await self._audit(by, "allow" if allowed else "deny", subject, "")
        await self._db.commit()

    @serialized
    async def quota_override(self, user_id: int) -> int | None:
        """A user's own daily request quota, if set."""
        async with self._db.execute(
            "SELECT requests FROM quota_overrides WHERE user_id = ?", (user_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else None

    @serialized
    async def set_quota_override(self, user_id: int, requests: int, by: int) -> None:
        """Set a user's daily request quota, audited."""
        await self._db.execute(
            "INSERT INTO quota_overrides (user_id, requests) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET requests = excluded.requests",
            (user_id, requests),
        )
        await self._audit(by, "quota", str(user_id), str(requests))
        await self._db.commit()

    async def _audit(self, admin_id: int, action: str, subject: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO admin_audit (at, admin_id, action, subject, value)"
            " VALUES (?, ?, ?, ?, ?)",
            (int(time.time()), admin_id, action, subject, value),
        )

    @serialized
    async def audit_log(self, limit: int = 20) -> list[tuple[int, int, str, str, str]]:
        """The newest operator changes, newest first."""
        async with self._db.execute(
            "SELECT at, admin_id, action, subject, value FROM admin_audit"
            " ORDER BY rowid DESC LIMIT ?",
            (limit,),
        ) as cursor:
            return [
                (int(at), int(admin), str(action), str(subject), str(value))
                for at, admin, action, subject, value in await cursor.fetchall()
            ]

    @serialized
    async def usage(self, day: str, scope: str, subject: int) -> Usage:
        """What ``subject`` used on ``day``."""
        async with self._db.execute(
            "SELECT requests, chars, tokens, refused FROM usage_daily"
            " WHERE day = ? AND scope = ? AND subject = ?",
            (day, scope, subject),
        ) as cursor:
            row = await cursor.fetchone()
        return Usage(*(int(v) for v in row)) if row else Usage()

    @serialized
    async def add_usage(self, day: str, scope: str, subject: int, usage: Usage) -> None:
        """Add to the day's counters of ``subject``."""
        await self._db.execute(
            """
            INSERT INTO usage_daily (day, scope, subject, requests, chars, tokens, refused)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (day, scope, subject) DO UPDATE SET
                requests = requests + excluded.requests, chars = chars + excluded.chars,
                tokens = tokens + excluded.tokens, refused = refused + excluded.refused
            """,
            (day, scope, subject, usage.requests, usage.chars, usage.tokens, usage.refused),
        )
        await self._db.commit()

    @serialized
    async def record_answer_time(self, day: str, seconds: float) -> None:
        """Remember one request's handling time."""
        await self._db.execute(
            "INSERT INTO answer_times (day, seconds) VALUES (?, ?)", (day, seconds)
        )
        await self._db.commit()

    @serialized
    async def first_notice_today(self, chat_id: int, day: str) -> bool:
        """True the first time ``chat_id`` is refused on ``day``."""
        cursor = await self._db.execute(
            "INSERT OR IGNORE INTO access_notices (chat_id, day) VALUES (?, ?)", (chat_id, day)
        )
        await self._db.commit()
        return cursor.rowcount == 1

    @serialized
    async def usage_stats(self, days: list[str]) -> UsageStats:
        """Counts over ``days`` (users and chats that made at least one request)."""
        marks = ",".join("?" * len(days))
        where = f"day IN ({marks})"
        async with self._db.execute(
            f"SELECT scope, COUNT(DISTINCT subject), SUM(requests), SUM(tokens), SUM(refused)"  # noqa: S608
            f" FROM usage_daily WHERE {where} AND requests > 0 GROUP BY scope",
            days,
        ) as cursor:
            by_scope = {str(row[0]): row[1:] for row in await cursor.fetchall()}
        async with self._db.execute(
            f"SELECT SUM(refused) FROM usage_daily WHERE {where} AND scope = 'user'",  # noqa: S608
            days,
        ) as cursor:
            refused_row = await cursor.fetchone()
        async with self._db.execute(
            f"SELECT seconds FROM answer_times WHERE {where} ORDER BY seconds",  # noqa: S608
            days,
        ) as cursor:
            times = [float(row[0]) for row in await cursor.fetchall()]
        async with self._db.execute(
            f"SELECT subject, SUM(requests) AS total FROM usage_daily WHERE {where}"  # noqa: S608
            " AND scope = 'user' GROUP BY subject HAVING total > 0 ORDER BY total DESC LIMIT 5",
            days,
        ) as cursor:
            top = [(int(subject), int(total)) for subject, total in await cursor.fetchall()]
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
        """Close the connection."""
        await self._db.close()
