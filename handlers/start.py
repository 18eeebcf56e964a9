"""/start and /help, and the command list registered with Telegram."""

from __future__ import annotations

from telegram import BotCommand, Update
from telegram.constants import ChatType

from handlers.chat_context import CondensaContext
from handlers.deps import HandlerDeps
from handlers.i18n import UI_LANGUAGES, t

COMMANDS = (
    "summary",
    "keywords",
    "ask",
    "generate",
    "cancel",
    "settings",
    "digest",
    "catchup",
    "digest_on",
    "digest_off",
    "schedule",
    "optout",
    "optin",
    "forget",
    "help",
    "start",
)


def bot_commands(language: str) -> list[BotCommand]:
    """The command menu in ``language``."""
    return [BotCommand(name, t(f"cmd_{name}", language)) for name in COMMANDS]


def command_menus() -> dict[str | None, list[BotCommand]]:
    """Command menus by language code (None: the default for every other language)."""
    menus: dict[str | None, list[BotCommand]] = {None: bot_commands("en")}
    for language in UI_LANGUAGES:
        if language != "en":
            menus[language] = bot_commands(language)
    return menus


class StartHandlers:
    """Greeting and help."""

    def __init__(self, deps: HandlerDeps) -> None:
        self._deps = deps

    async def start(self, update: Update, context: CondensaContext) -> None:
        """Say what the bot does, in the user's language."""
        await self._send_help(update, context, include_group=False)

    async def help(self, update: Update, context: CondensaContext) -> None:
        """Explain the commands; in groups, explain privacy mode too."""
        await self._send_help(update, context, include_group=True)

    async def _send_help(
        self, update: Update, context: CondensaContext, include_group: bool
    ) -> None:
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None:
            return
        language = context.chat_settings.language
        text = t("start", language)
        if include_group and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
            text += t("help_group", language)
        await message.reply_html(text, do_quote=False, disable_web_page_preview=True)
