"""Guest mode (Bot API 10.0): ``@bot`` in any chat, as a reply to a long message, a forwarded
article or a document, or followed by a link or text, without adding the bot to that chat.

The bot gets a ``guest_message`` (with the message it replies to) and answers once with
``answerGuestQuery``; Telegram posts the answer into that chat. ``@bot keywords`` (or
``claves``, ``palabras clave``, ``key phrases``) gives the key phrases instead of a summary.

Nothing is stored from the chat: the update skips the inbox (``bot.delivery.inbox``), no other
handler sees it (it ends the update here, so no archive, no chat preferences, no usage row for
that chat), and what is sent is not recorded. The user's own settings (their private chat
with the bot), the operator's access rules and the user's own daily quotas apply, as for
inline mode.
"""

from __future__ import annotations

import logging
import re

from telegram import InlineQueryResultArticle, InputTextMessageContent, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from handlers.access import allowed_in_private, quota_elsewhere, until_midnight
from handlers.chat_context import CondensaContext
from handlers.deps import HandlerDeps
from handlers.errors import error_sentence
from handlers.i18n import pick_language, t
from handlers.inputs import message_text, resolve_input
from handlers.render import document_heading, escape, render_keywords, render_summary
from services.core.errors import CondensaError
from services.core.types import ChatPreferences, SummaryOptions

logger = logging.getLogger(__name__)

_KEYWORDS = re.compile(
    r"^(?:keywords?|key\s+phrases?|keyphrases?|claves|palabras\s+clave|frases\s+clave)\b[\s:,-]*",
    re.IGNORECASE,
)
_SUMMARY = re.compile(r"^(?:summary|summari[sz]e|resumen|resume|resumir)\b[\s:,-]*", re.IGNORECASE)
_MENTION = re.compile(r"^\s*@\w+\s*")


def guest_request(text: str) -> tuple[bool, str]:
    """(key phrases wanted, the rest of the text) of ``@bot [keywords|summary] [link or text]``."""
    rest = _MENTION.sub("", text, count=1).strip()
    if _KEYWORDS.match(rest):
        return True, _KEYWORDS.sub("", rest, count=1).strip()
    return False, _SUMMARY.sub("", rest, count=1).strip()


class GuestHandlers:
    """Answers guest messages; ends every update that carries one."""

    def __init__(self, deps: HandlerDeps) -> None:
        self._deps = deps
        self.answered = 0
        """Guest queries answered (for tests and metrics)."""

    async def route(self, update: Update, context: CondensaContext) -> None:
        """In the first handler group: a guest message is answered here and goes no further."""
        message = update.guest_message
        if message is None:
            return
        try:
            await self._answer(message, update.update_id, context)
        except Exception:  # noqa: BLE001 - raised on, later handlers would see the message
            logger.exception("a guest query failed")
            user = message.from_user
            if message.guest_query_id and user is not None:
                language = pick_language(None, user.language_code)
                await self._send(
                    context,
                    message.guest_query_id,
                    "e",
                    t("inline_summary", language),
                    escape(t("err_generic", language)),
                )
        raise ApplicationHandlerStop

    async def _answer(self, message: Message, update_id: int, context: CondensaContext) -> None:
        query_id = message.guest_query_id
        user = message.from_user
        if not query_id or user is None:
            return
        preferences = await self._deps.store.get_preferences(user.id)
        language = pick_language(preferences.language, user.language_code)
        if not await allowed_in_private(self._deps, user):
            text = escape(t("access_denied", language))
            await self._send(context, query_id, "x", t("inline_summary", language), text)
            return
        keywords, rest = guest_request(message.text or message.caption or "")
        title = t("inline_keywords" if keywords else "inline_summary", language)
        replied = message.reply_to_message
        size = len(rest) + (len(message_text(replied)) if replied is not None else 0)
        exceeded = await quota_elsewhere(self._deps, user, update_id, size)
        if exceeded:
            text = escape(t(exceeded, language, wait=until_midnight(self._deps.clock())))
            await self._send(context, query_id, "q", title, text)
            return
        try:
            page = await self._page(message, context, keywords, rest, language, preferences)
        except CondensaError as error:
            logger.info("a guest query could not be answered: %s", type(error).__name__)
            page = error_sentence(error, language)
        await self._send(context, query_id, "k" if keywords else "s", title, page)
        self.answered += 1

    async def _page(
        self,
        message: Message,
        context: CondensaContext,
        keywords: bool,
        rest: str,
        language: str,
        preferences: ChatPreferences,
    ) -> str:
        limits = self._deps.limits
        source = await resolve_input(
            message,
            context.bot,
            limits.max_file_bytes,
            self._deps.documents,
            self._deps.links,
            arguments=rest,
        )
        if source is None or not source.text.strip():
            return escape(t("guest_usage", language, bot=context.bot.username))
        title, note = document_heading(source, language)
        if keywords:
            found = await self._deps.keywords.extract(source.text, top_n=limits.keywords_top_n)
            return render_keywords(found, language, title=title, note=note)[0]
        options = SummaryOptions(method=preferences.method, length=preferences.length)
        summary = await self._deps.summarizer.summarize(source.text, options)
        return render_summary(summary, language, title=title, note=note)[0]

    @staticmethod
    async def _send(
        context: CondensaContext, query_id: str, kind: str, title: str, page: str
    ) -> None:
        result = InlineQueryResultArticle(
            f"{kind}{query_id}"[:64],
            title,
            InputTextMessageContent(page, parse_mode=ParseMode.HTML),
        )
        try:
            await context.bot.answer_guest_query(query_id, result)
        except TelegramError as error:
            logger.warning("a guest answer was refused: %s", error)
