"""Per-chat preferences (method, length, language)."""

from __future__ import annotations

import datetime as dt
import logging

from services.core.types import (
    ChatPreferences,
    Length,
)
from services.storage.base import StoreBase, Tx, transaction

logger = logging.getLogger(__name__)


class PreferencesStore(StoreBase):
    """Per-chat preferences (method, length, language)."""

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
