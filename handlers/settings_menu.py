"""/settings: an inline keyboard that stores a chat's method, length and reply language."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest

from handlers.chat_context import CondensaContext, is_chat_admin
from handlers.deps import HandlerDeps
from handlers.i18n import UI_LANGUAGES, pick_language, t
from handlers.render import escape, method_label
from services.core.types import ChatPreferences, Length

logger = logging.getLogger(__name__)

CALLBACK_PREFIX = "cfg"


def _button(label: str, selected: bool, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(f"✓ {label}" if selected else label, callback_data=data)


class SettingsHandlers:
    """Shows and applies per-chat preferences."""

    def __init__(self, deps: HandlerDeps) -> None:
        self._deps = deps

    def _keyboard(self, preferences: ChatPreferences, language: str) -> InlineKeyboardMarkup:
        methods = self._deps.summarizer.methods()
        current_method = preferences.method or methods[0]
        method_row = [
            _button(method_label(m), m == current_method, f"{CALLBACK_PREFIX}:m:{m}")
            for m in methods
        ]
        rows = [method_row[i : i + 3] for i in range(0, len(method_row), 3)]
        rows.append(
            [
                _button(
                    t(f"length_{length.value}", language),
                    preferences.length == length,
                    f"{CALLBACK_PREFIX}:l:{length.value}",
                )
                for length in Length
            ]
        )
        rows.append(
            [
                _button(
                    t(f"language_{code or 'auto'}", language),
                    preferences.language == code,
                    f"{CALLBACK_PREFIX}:g:{code or 'auto'}",
                )
                for code in ("", *UI_LANGUAGES)
            ]
        )
        return InlineKeyboardMarkup(rows)

    def _title(self, preferences: ChatPreferences, language: str) -> str:
        methods = self._deps.summarizer.methods()
        return t(
            "settings_title",
            language,
            method=escape(method_label(preferences.method or methods[0])),
            length=t(f"length_{preferences.length.value}", language),
            reply_language=t(f"language_{preferences.language or 'auto'}", language),
        )

    async def show(self, update: Update, context: CondensaContext) -> None:
        """Send the settings keyboard for this chat."""
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None:
            return
        preferences, language = context.chat_settings.preferences, context.chat_settings.language
        await message.reply_html(
            self._title(preferences, language),
            reply_markup=self._keyboard(preferences, language),
            do_quote=False,
        )

    async def on_button(self, update: Update, context: CondensaContext) -> None:
        """Apply a pressed settings button and redraw the keyboard."""
        query = update.callback_query
        chat = update.effective_chat
        if query is None or chat is None or query.data is None:
            return
        user = query.from_user
        preferences, language = context.chat_settings.preferences, context.chat_settings.language
        in_group = chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
        if in_group and not await is_chat_admin(context.bot, chat.id, user.id):
            await query.answer(t("settings_admins_only", language), show_alert=True)
            return
        updated = self._apply(preferences, query.data)
        if updated is None:
            await query.answer(t("settings_invalid", language))
            return
        await self._deps.store.set_preferences(chat.id, updated)
        language = pick_language(updated.language, user.language_code)
        await query.answer(t("settings_saved", language))
        try:
            await query.edit_message_text(
                self._title(updated, language),
                parse_mode=ParseMode.HTML,
                reply_markup=self._keyboard(updated, language),
            )
        except BadRequest as exc:  # pressing the already-selected option changes nothing
            if "not modified" not in str(exc).lower():
                raise

    def _apply(self, preferences: ChatPreferences, data: str) -> ChatPreferences | None:
        parts = data.split(":", 2)
        if len(parts) != 3 or parts[0] != CALLBACK_PREFIX:
            return None
        _, field, value = parts
        if field == "m" and value in self._deps.summarizer.methods():
            return replace(preferences, method=value)
        if field == "l" and value in {length.value for length in Length}:
            return replace(preferences, length=Length(value))
        if field == "g" and (value == "auto" or value in UI_LANGUAGES):
            return replace(preferences, language="" if value == "auto" else value)
        return None
