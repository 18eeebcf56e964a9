"""``/catchup`` (``/ponerme_al_dia``): what a member missed in a group, sent to them in private.

The window is since the member's last kept message in the group (or what follows the command,
as ``/digest`` reads it: ``2d``, ``since monday``, two links). The answer goes to the member's
private chat; when they have not started the bot, the group gets one line with a deep link
(``t.me/<bot>?start=catchup_<group>``) that sends it once they press Start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from telegram import Bot, Chat, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, TelegramError

from handlers.chat_context import CondensaContext
from handlers.deps import HandlerDeps
from handlers.i18n import pick_language, t
from handlers.ranges import DigestWindow, parse_window
from handlers.render import render_catchup
from services.core.protocols import DigestMaker, MessageArchive
from services.core.types import ChatMessage, Member

logger = logging.getLogger(__name__)

GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP)
START_PREFIX = "catchup_"
AUTO_ON = {"auto", "automatico", "automático", "on"}
AUTO_OFF = {"off", "no", "desactivar"}
DEFAULT_HOURS = 24
"""The window of a member with no kept message in the group."""
_MEMBERS = (
    ChatMemberStatus.OWNER,
    ChatMemberStatus.ADMINISTRATOR,
    ChatMemberStatus.MEMBER,
    ChatMemberStatus.RESTRICTED,
)


def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


class CatchUpHandlers:
    """``/catchup`` in a group, and the deep link that delivers it in private."""

    def __init__(self, deps: HandlerDeps, archive: MessageArchive, digests: DigestMaker) -> None:
        self._deps = deps
        self._archive = archive
        self._digests = digests

    async def catchup(self, update: Update, context: CondensaContext) -> None:
        """``/catchup [window]`` in a group: the member's catch-up, in private."""
        message, chat, user = (
            update.effective_message,
            update.effective_chat,
            update.effective_user,
        )
        if message is None or chat is None or user is None:
            return
        language = context.chat_settings.language
        if chat.type not in GROUP_TYPES:
            await message.reply_text(t("groups_only", language), do_quote=True)
            return
        settings = await self._archive.digest_settings(chat.id)
        if not settings.enabled:
            await message.reply_text(t("digest_not_enabled", language), do_quote=True)
            return
        choice = (context.args or [""])[0].lower()
        if choice in AUTO_ON or choice in AUTO_OFF:
            now = int(self._deps.clock())
            await self._archive.set_catchup_auto(chat.id, user.id, choice in AUTO_ON, now)
            key = "catchup_auto_on" if choice in AUTO_ON else "catchup_auto_off"
            hours = round(self._deps.limits.catchup_after_hours)
            await message.reply_text(t(key, language, hours=hours), do_quote=True)
            return
        window = await asyncio.to_thread(
            parse_window,
            " ".join(context.args or []),
            self._deps.limits.digest_max_messages,
            dt.datetime.now(_zone(settings.timezone)),
        )
        if window is None:
            await message.reply_text(t("catchup_usage", language), do_quote=True)
            return
        private_language = pick_language(None, user.language_code) or language
        pages = await self._pages(context.bot, chat, user, window, private_language)
        if not await self._send_privately(context.bot, user, pages):
            link = f"https://t.me/{context.bot.username}?start={START_PREFIX}{chat.id}"
            await message.reply_html(t("catchup_start_first", language, link=link), do_quote=True)
            return
        await message.reply_text(t("catchup_sent", language), do_quote=True)

    async def on_member_message(self, update: Update, context: CondensaContext) -> None:
        """A member who asked for ``/catchup auto`` writes after being away at least
        ``CATCHUP_AFTER_HOURS``: their catch-up of the absence, in private, once (across
        workers); never to someone who has not started the bot."""
        message, chat, user = (
            update.effective_message,
            update.effective_chat,
            update.effective_user,
        )
        if message is None or chat is None or user is None or user.is_bot:
            return
        if chat.type not in GROUP_TYPES:
            return
        now = int(self._deps.clock())
        previous = await self._archive.catchup_seen(chat.id, user.id, now)
        if previous is None or now - previous < self._deps.limits.catchup_after_hours * 3600:
            return
        if not await self._deps.coordination.once(
            f"catchup:{chat.id}:{user.id}:{previous}", 86_400
        ):
            return
        language = pick_language(None, user.language_code)
        # Times are whole seconds and the window is "after": a reply in the very second she
        # last wrote belongs to it (her own messages are never listed).
        window = DigestWindow(since=previous - 1)
        pages = await self._pages(context.bot, chat, user, window, language)
        if not await self._send_privately(context.bot, user, pages):
            logger.info("no automatic catch-up for a member who has not started the bot")

    @staticmethod
    async def _send_privately(bot: Bot, user: User, pages: list[str]) -> bool:
        """Send ``pages`` to the user's private chat; False when Telegram refuses because they
        never started the bot (other failures are raised)."""
        try:
            for page in pages:
                await bot.send_message(
                    user.id, page, parse_mode="HTML", disable_web_page_preview=True
                )
        except Forbidden:
            return False
        except BadRequest as error:
            if "chat not found" not in str(error).lower():
                raise
            return False
        return True

    async def start_link(self, update: Update, context: CondensaContext) -> None:
        """``/start catchup_<group>`` in private: the catch-up of that group, for a member of
        it (anyone else gets the usual welcome)."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or not context.args:
            return
        language = context.chat_settings.language
        try:
            chat_id = int(context.args[0].removeprefix(START_PREFIX))
            member = await context.bot.get_chat_member(chat_id, user.id)
            chat = await context.bot.get_chat(chat_id)
        except (ValueError, TelegramError):
            await message.reply_text(t("catchup_not_member", language))
            return
        if member.status not in _MEMBERS:
            await message.reply_text(t("catchup_not_member", language))
            return
        if not (await self._archive.digest_settings(chat_id)).enabled:
            await message.reply_text(t("digest_not_enabled", language))
            return
        group = Chat(chat.id, chat.type, title=chat.title, username=chat.username)
        for page in await self._pages(context.bot, group, user, DigestWindow(), language):
            await message.reply_html(page, disable_web_page_preview=True)

    async def _pages(
        self, bot: Bot, chat: Chat, user: User, window: DigestWindow, language: str
    ) -> list[str]:
        kept = await self._archive.messages(
            chat.id, last=self._deps.limits.digest_max_messages, thread_id=None
        )
        unbounded = window.last is None and window.first_id is None and window.since is None
        if unbounded:
            # Since the member's last message (by id: several can share a second), else a day.
            own = [m.message_id for m in kept if m.user_id == user.id]
            if own:
                window = DigestWindow(first_id=max(own) + 1)
            else:
                since = int(self._deps.clock()) - DEFAULT_HOURS * 3600
                window = DigestWindow(since=since)
        selected = _within(kept, window)
        member = Member(user.id, user.username or "")
        authors = {m.message_id: m.user_id for m in kept}
        catchup = await self._digests.catch_up(selected, member, authors)
        return render_catchup(catchup, chat.title or "", language, chat.username, chat.id)


def _within(kept: list[ChatMessage], window: DigestWindow) -> list[ChatMessage]:
    chosen = [
        m
        for m in kept
        if (window.since is None or m.date > window.since)
        and (window.until is None or m.date < window.until)
        and (window.first_id is None or m.message_id >= window.first_id)
        and (window.last_id is None or m.message_id <= window.last_id)
    ]
    return chosen[-window.last :] if window.last else chosen
