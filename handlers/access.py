"""Who may use the bot, and how much: allow-lists, daily quotas, and the operator's commands.

An ``AccessGate`` in handler group -1 sees every update before the command handlers (right
after the chat-settings loader in group -2). An update from a user or group
the operator has not allowed gets one polite sentence (once per chat per UTC day) and goes no
further — nothing is processed or stored; a group that is not allowed is left after saying so.
Requests (summaries, key phrases, digests, /ask, /generate) are counted per user and per group
per UTC day in the store, so quotas survive restarts and are shared by every process; over a
quota, one sentence says when it resets. A handler in group 99 records how long each request
took. Statistics are counts and ids only: no message text is kept for them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from telegram import Chat, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from handlers.chat_context import CondensaContext
from handlers.deps import AccessPolicy, HandlerDeps, subjects_of
from handlers.i18n import pick_language, t, tn
from handlers.inputs import attachment_weight, command_arguments, message_text
from handlers.render import escape
from services.core.protocols import AccessLedger
from services.core.types import Usage

logger = logging.getLogger(__name__)

WORK_COMMANDS = frozenset({"summary", "keywords", "digest", "ask", "generate"})
LLM_COMMANDS = frozenset({"ask", "generate"})
GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP)
_JOINED = (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR)


def parse_subjects(text: str) -> frozenset[str]:
    """``"123, @Name -100456"`` → ``{"123", "@name", "-100456"}`` (ids and lower-case names)."""
    items = text.replace(",", " ").split()
    return frozenset(item.lower() if item.startswith("@") else item for item in items)


def utc_day(now: float) -> str:
    """The UTC date of Unix time ``now`` (quotas reset at 00:00 UTC)."""
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")


def until_midnight(now: float) -> str:
    """ "3 h 12 min": how long until the next 00:00 UTC."""
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    midnight = (moment + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = max(1, int((midnight - moment).total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def command_of(message: Message) -> str:
    """The command a message starts with, without the slash or @bot ("" if none)."""
    text = message.text or message.caption or ""
    if not text.startswith("/"):
        return ""
    return text.split(None, 1)[0][1:].split("@", 1)[0].lower()


class AccessGate:
    """Group -1: refuse who may not use the bot, count requests, enforce quotas.

    Args:
        policy: the operator's settings.
        ledger: rules and counters in the store.
        auto_summary_min_chars: a private text this long (or forwarded) is a request.
        clock: Unix time (injected by tests to cross midnight).
    """

    def __init__(
        self,
        policy: AccessPolicy,
        ledger: AccessLedger,
        auto_summary_min_chars: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._ledger = ledger
        self._min_chars = auto_summary_min_chars
        self._clock = clock

    async def __call__(self, update: object, context: CondensaContext) -> None:
        """Let the update through, or answer once and stop every later handler."""
        if not isinstance(update, Update):
            return
        user, chat = update.effective_user, update.effective_chat
        if chat is None:
            return
        if update.my_chat_member is not None:
            await self._membership(update, context)
            return
        if self._policy.is_admin(user):
            await self._count(update, context, admin=True)
            return
        if not await self.allowed(user, chat):
            await self._refuse(update, context, user, chat)
            raise ApplicationHandlerStop
        await self._count(update, context, admin=False)

    async def allowed(self, user: User | None, chat: Chat) -> bool:
        """Whether ``user`` may use the bot in ``chat`` (deny rules win; groups need the
        group itself allowed, private chats the user)."""
        user_keys, chat_keys = subjects_of(user), subjects_of(chat)
        rules = await self._ledger.access_rules([*user_keys, *chat_keys])
        if any(rules.get(key) is False for key in (*user_keys, *chat_keys)):
            return False
        if not self._policy.restricted:
            return True
        if any(key in self._policy.allowed_chats or rules.get(key) for key in chat_keys):
            return True
        if chat.type in GROUP_TYPES:
            return False
        return any(key in self._policy.allowed_users or rules.get(key) for key in user_keys)

    async def _membership(self, update: Update, context: CondensaContext) -> None:
        """The bot was added to a group: stay only where allowed (or added by someone allowed,
        which allows the group)."""
        change = update.my_chat_member
        assert change is not None
        chat, adder = change.chat, change.from_user
        if chat.type not in GROUP_TYPES or change.new_chat_member.status not in _JOINED:
            return
        if await self.allowed(None, chat):
            return
        if self._policy.is_admin(adder) or await self._user_allowed(adder):
            await self._ledger.set_access_rule(str(chat.id), True, adder.id)
            logger.info("group %s allowed: added by an allowed user", chat.id)
            return
        language = pick_language(None, adder.language_code)
        day = utc_day(self._clock())
        await self._ledger.add_usage(day, "chat", chat.id, Usage(refused=1))
        try:
            await context.bot.send_message(chat.id, t("access_group_left", language))
            await context.bot.leave_chat(chat.id)
        except TelegramError as exc:
            logger.warning("could not leave group %s: %s", chat.id, exc)
        raise ApplicationHandlerStop

    async def _user_allowed(self, user: User) -> bool:
        keys = subjects_of(user)
        rules = await self._ledger.access_rules(keys)
        if any(rules.get(key) is False for key in keys):
            return False
        return any(key in self._policy.allowed_users or rules.get(key) for key in keys)

    async def _refuse(
        self, update: Update, context: CondensaContext, user: User | None, chat: Chat
    ) -> None:
        day = utc_day(self._clock())
        if user is not None:
            await self._ledger.add_usage(day, "user", user.id, Usage(refused=1))
        language = pick_language(None, user.language_code if user else None)
        if chat.type in GROUP_TYPES:
            if await self.allowed(None, chat):
                return  # a denied member of an allowed group is ignored; the group keeps the bot
            try:
                await context.bot.send_message(chat.id, t("access_group_left", language))
                await context.bot.leave_chat(chat.id)
            except TelegramError as exc:
                logger.warning("could not leave group %s: %s", chat.id, exc)
            return
        if await self._ledger.first_notice_today(chat.id, day):
            await context.bot.send_message(chat.id, t("access_denied", language))

    def _request_size(self, message: Message) -> int | None:
        """Characters of a request, or None when the message is not a request."""
        command = command_of(message)
        replied = message.reply_to_message
        extra = len(message_text(replied)) if replied is not None else 0
        if replied is not None:
            extra += attachment_weight(replied) or 0
        if command:
            if command not in WORK_COMMANDS:
                return None
            size = len(command_arguments(message)) + extra
        elif message.chat.type == ChatType.PRIVATE:
            text = message_text(message)
            plain = attachment_weight(message) is None and message.forward_origin is None
            if plain and len(text) < self._min_chars:
                return None
            size = len(text)
        else:
            return None
        return size + (attachment_weight(message) or 0)

    async def _count(self, update: Update, context: CondensaContext, admin: bool) -> None:
        message = update.message
        if message is None or message.from_user is None:
            return
        size = self._request_size(message)
        if size is None:
            return
        now = self._clock()
        day = utc_day(now)
        user, chat = message.from_user, message.chat
        group = chat.type in GROUP_TYPES
        if not admin:
            llm = command_of(message) in LLM_COMMANDS
            exceeded = await self._exceeded(day, user.id, chat.id if group else None, llm)
            if exceeded:
                await self._ledger.add_usage(
                    day, "user", user.id, Usage(refused=1), once_key=f"{update.update_id}:refused"
                )
                language = context.chat_settings.language
                await message.reply_text(
                    t(exceeded, language, wait=until_midnight(now)), do_quote=True
                )
                raise ApplicationHandlerStop
        # Counted once per update: the re-run of an update after a crash is not a new request.
        counted = Usage(requests=1, chars=size)
        once = f"{update.update_id}:request"
        await self._ledger.add_usage(day, "user", user.id, counted, once_key=once)
        if group:
            await self._ledger.add_usage(day, "chat", chat.id, counted, once_key=once)
        context.request_started = time.monotonic()

    async def charge_elsewhere(self, user: User, update_id: int, size: int) -> str:
        """Count a request made outside a chat the bot is in (inline and guest mode) against
        the user's own quotas: the message key of the quota it would exceed (refused and
        counted as refused), or empty (counted once per update). Nothing is counted for the
        chat it came from."""
        if self._policy.is_admin(user):
            return ""
        day = utc_day(self._clock())
        exceeded = await self._exceeded(day, user.id, None, llm=False)
        if exceeded:
            once = f"{update_id}:refused"
            await self._ledger.add_usage(day, "user", user.id, Usage(refused=1), once_key=once)
            return exceeded
        counted = Usage(requests=1, chars=size)
        await self._ledger.add_usage(
            day, "user", user.id, counted, once_key=f"{update_id}:request"
        )
        return ""

    async def _exceeded(self, day: str, user_id: int, group_id: int | None, llm: bool) -> str:
        """The message key of the first quota this request would exceed, or empty."""
        quotas = self._policy.quotas
        used = await self._ledger.usage(day, "user", user_id)
        own = await self._ledger.quota_override(user_id)
        requests = quotas.user_requests if own is None else own
        checks = [
            (requests, used.requests, "quota_requests"),
            (quotas.user_chars, used.chars, "quota_chars"),
            (quotas.user_tokens if llm else 0, used.tokens, "quota_tokens"),
        ]
        if group_id is not None:
            shared = await self._ledger.usage(day, "chat", group_id)
            checks += [
                (quotas.group_requests, shared.requests, "quota_group"),
                (quotas.group_chars, shared.chars, "quota_group"),
                (quotas.group_tokens if llm else 0, shared.tokens, "quota_group"),
            ]
        return next((key for limit, value, key in checks if limit and value >= limit), "")


class AnswerTimer:
    """Group 99: how long a counted request took, from the gate to the last handler."""

    def __init__(self, ledger: AccessLedger, clock: Callable[[], float] = time.time) -> None:
        self._ledger = ledger
        self._clock = clock

    async def __call__(self, update: object, context: CondensaContext) -> None:
        """Record the elapsed time of a request the gate counted."""
        started = context.request_started
        if started is not None:
            elapsed = time.monotonic() - started
            await self._ledger.record_answer_time(utc_day(self._clock()), elapsed)


class OperatorHandlers:
    """``/stats``, ``/allow``, ``/deny``, ``/quota``: for ``ADMIN_USERS``, in a private chat.

    Args:
        policy: who the operators are.
        ledger: rules, counters and the audit log.
        clock: Unix time.
    """

    def __init__(
        self, policy: AccessPolicy, ledger: AccessLedger, clock: Callable[[], float] = time.time
    ) -> None:
        self._policy = policy
        self._ledger = ledger
        self._clock = clock

    async def _operator(self, update: Update, context: CondensaContext) -> Message | None:
        message = update.effective_message
        if message is None:
            return None
        language = context.chat_settings.language
        if not self._policy.is_admin(update.effective_user):
            await message.reply_text(t("operator_only", language), do_quote=True)
            return None
        if message.chat.type != ChatType.PRIVATE:
            await message.reply_text(t("operator_private", language), do_quote=True)
            return None
        return message

    async def stats(self, update: Update, context: CondensaContext) -> None:
        """Counts for today and the last 7 days: users, chats, requests, tokens, refusals,
        time to answer, the largest users."""
        message = await self._operator(update, context)
        if message is None:
            return
        language = context.chat_settings.language
        now = self._clock()
        today = utc_day(now)
        week = [utc_day(now - 86_400 * back) for back in range(7)]
        blocks = []
        for label, days in (("stats_today", [today]), ("stats_week", week)):
            stats = await self._ledger.usage_stats(days)
            top = ", ".join(f"{user_id} ({count})" for user_id, count in stats.top_users) or "–"
            blocks.append(
                t(
                    label,
                    language,
                    users=tn("count_users", stats.users, language),
                    chats=tn("count_groups", stats.chats, language),
                    requests=f"{stats.requests:,}",
                    tokens=f"{stats.tokens:,}",
                    refused=f"{stats.refused:,}",
                    p50=f"{stats.answer_p50:.2f}",
                    p95=f"{stats.answer_p95:.2f}",
                    top=escape(top),
                )
            )
        await message.reply_html("\n\n".join(blocks), do_quote=False)

    async def allow(self, update: Update, context: CondensaContext) -> None:
        """``/allow <id|@username>``."""
        await self._rule(update, context, allowed=True)

    async def deny(self, update: Update, context: CondensaContext) -> None:
        """``/deny <id|@username>``."""
        await self._rule(update, context, allowed=False)

    async def _rule(self, update: Update, context: CondensaContext, allowed: bool) -> None:
        message = await self._operator(update, context)
        if message is None or message.from_user is None:
            return
        language = context.chat_settings.language
        subjects = sorted(parse_subjects(command_arguments(message)))
        if len(subjects) != 1 or not _valid_subject(subjects[0]):
            await message.reply_text(t("allow_usage", language), do_quote=True)
            return
        await self._ledger.set_access_rule(subjects[0], allowed, message.from_user.id)
        key = "allow_done" if allowed else "deny_done"
        await message.reply_text(t(key, language, subject=subjects[0]), do_quote=True)

    async def quota(self, update: Update, context: CondensaContext) -> None:
        """``/quota <user id> <requests per day>``."""
        message = await self._operator(update, context)
        if message is None or message.from_user is None:
            return
        language = context.chat_settings.language
        parts = command_arguments(message).split()
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
            await message.reply_text(t("quota_usage", language), do_quote=True)
            return
        user_id, requests = int(parts[0]), int(parts[1])
        await self._ledger.set_quota_override(user_id, requests, message.from_user.id)
        await message.reply_text(
            t("quota_done", language, user=user_id, requests=requests), do_quote=True
        )


def _valid_subject(subject: str) -> bool:
    if subject.startswith("@"):
        return 5 <= len(subject) <= 33 and subject[1:].replace("_", "").isalnum()
    return subject.lstrip("-").isdigit()


async def quota_elsewhere(deps: HandlerDeps, user: User, update_id: int, size: int) -> str:
    """:meth:`AccessGate.charge_elsewhere` for inline and guest mode ("" without a ledger)."""
    if deps.ledger is None:
        return ""
    gate = AccessGate(deps.access, deps.ledger, 0, deps.clock)
    return await gate.charge_elsewhere(user, update_id, size)


async def allowed_in_private(deps: HandlerDeps, user: User) -> bool:
    """Whether ``user`` may use the bot outside a chat it is in (inline and guest mode): the
    operator's rules as for a private chat with them."""
    if deps.access.is_admin(user):
        return True
    if deps.ledger is None:
        return not deps.access.restricted
    gate = AccessGate(deps.access, deps.ledger, 0, deps.clock)
    return await gate.allowed(user, Chat(user.id, Chat.PRIVATE))
