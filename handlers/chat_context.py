"""What every handler needs first, loaded in one place: the chat's preferences and the reply
language, and who may administer a group.

A ``TypeHandler`` in group -2 (PTB's middleware idiom) runs before every other handler, loads the
chat's preferences once per update and keeps them on the callback context, which PTB creates
once per update and hands to every handler group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Bot, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import CallbackContext, ContextTypes, ExtBot

from handlers.i18n import DEFAULT_LANGUAGE, pick_language
from services.core.protocols import Store
from services.core.types import ChatPreferences

ADMIN_STATUSES = frozenset({ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER})


@dataclass(frozen=True)
class ChatSettings:
    """A chat's stored preferences and the language to answer this update in."""

    preferences: ChatPreferences
    language: str


class CondensaContext(
    CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]
):
    """PTB's callback context plus the chat settings the middleware loaded (defaults in jobs)."""

    chat_settings: ChatSettings = ChatSettings(ChatPreferences(), DEFAULT_LANGUAGE)
    request_started: float | None = None
    """``time.monotonic()`` when the access gate counted this update as a request."""


def context_types() -> ContextTypes[
    CondensaContext, dict[Any, Any], dict[Any, Any], dict[Any, Any]
]:
    """The ``ContextTypes`` the Application is built with."""
    return ContextTypes(context=CondensaContext)


class ChatSettingsLoader:
    """The group -2 callback: load the chat's preferences and pick the reply language.

    Args:
        store: where preferences live.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def __call__(self, update: object, context: CondensaContext) -> None:
        """Keep the settings of ``update``'s chat on ``context``."""
        if not isinstance(update, Update):
            return
        chat, user = update.effective_chat, update.effective_user
        preferences = (
            await self._store.get_preferences(chat.id) if chat is not None else ChatPreferences()
        )
        language = pick_language(preferences.language, user.language_code if user else None)
        context.chat_settings = ChatSettings(preferences, language)


async def is_chat_admin(bot: Bot, chat_id: int, user_id: int) -> bool:
    """Whether ``user_id`` administers ``chat_id`` (False when Telegram cannot tell)."""
    try:
        member = await bot.get_chat_member(chat_id, user_id)
    except TelegramError:
        return False
    return member.status in ADMIN_STATUSES
