"""Per-chat state in a SQLite file under ``DATA_DIR``, accessed asynchronously (aiosqlite)."""

from __future__ import annotations

import logging
from pathlib import Path

import aiosqlite

from services.protocols import ChatPreferences, Length

logger = logging.getLogger(__name__)

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
)


class SQLiteStore:
    """The :class:`services.protocols.Store` on one SQLite file.

    Use :meth:`open` to create it; the file and its directory are created on first run.
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> SQLiteStore:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path)
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        store = cls(connection, path)
        await store._migrate()
        return store

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            logger.info("migrating %s to schema version %d", self.path.name, number)
            await self._db.executescript(script)
            await self._db.execute(f"PRAGMA user_version = {number}")
        await self._db.commit()

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

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()
