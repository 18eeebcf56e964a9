"""Group digests: keeping messages (when an admin allows it), /digest, schedules, privacy."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telegram import Chat, ChatFullInfo, ChatMemberUpdated, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import Application, JobQueue

from handlers.chat_context import CondensaContext, is_chat_admin
from handlers.deps import HandlerDeps, watched
from handlers.errors import error_sentence
from handlers.i18n import pick_language, t, tn
from handlers.inputs import message_text, voice_in
from handlers.ranges import DigestWindow, parse_window
from handlers.render import escape, render_digest
from handlers.voice import transcribe_quietly
from services.core.errors import CondensaError, EmptyInput, InputTooLarge, NotAnExport
from services.core.protocols import DigestMaker, ExportReader, MessageArchive
from services.core.types import ChatMessage

logger = logging.getLogger(__name__)

GONE_STATUSES = (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED)
GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP)
_TIME_RE = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?$")
_JOB_PREFIX = "digest:"
_RETRY_PREFIX = "digest-retry:"
_PURGE_JOB = "retention-purge"
_SYNC_JOB = "schedule-sync"
_DIGEST_JOBS = "scheduled-digests"
DIGEST_LOCK_SECONDS = 600.0
"""A digest holds its group's lock at most this long (a worker that died frees it then)."""
SCHEDULE_RETRY_SECONDS = 60.0
"""A scheduled digest that failed (model server down, Telegram unreachable, a manual /digest
holding the group's lock) is tried again after this long, then twice as long each time, until
its day ends."""


def parse_schedule(arguments: list[str]) -> tuple[str, str] | None:
    """``/schedule`` arguments → ("HH:MM[:SS]", time zone), ("", "") for "off", None if bad."""
    if len(arguments) == 1 and arguments[0].lower() in ("off", "no", "stop"):
        return "", ""
    if not 1 <= len(arguments) <= 2 or _TIME_RE.match(arguments[0]) is None:
        return None
    zone = arguments[1] if len(arguments) == 2 else "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return arguments[0], zone


def schedule_time(schedule: str, zone: str) -> dt.time:
    """The aware ``datetime.time`` of a stored schedule."""
    match = _TIME_RE.match(schedule)
    if match is None:
        raise ValueError(f"bad schedule {schedule!r}")
    return dt.time(int(match["h"]), int(match["m"]), int(match["s"] or 0), tzinfo=ZoneInfo(zone))


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def display_name(user: User | None) -> str:
    """A user's name as shown in digests."""
    if user is None:
        return ""
    return user.full_name or (user.username or "")


class DigestDeferred(Exception):
    """A scheduled digest could not be made now (its group's lock is held, or a model or the
    store failed): nothing was posted; it is tried again later."""


class DigestHandlers:
    """Everything about group digests; inert when the archive or digest service is missing."""

    def __init__(
        self,
        deps: HandlerDeps,
        archive: MessageArchive,
        digests: DigestMaker,
        exports: ExportReader,
    ) -> None:
        self._deps = deps
        self._archive = archive
        self._digests = digests
        self._exports = exports
        self._scheduled_job = watched(deps.jobs, _DIGEST_JOBS, self._scheduled)

    async def _enabled_or_say_so(self, message: Message, chat_id: int, language: str) -> bool:
        """Whether digests are on in the group; if not, the reply says how to turn them on."""
        if (await self._archive.digest_settings(chat_id)).enabled:
            return True
        await message.reply_text(t("digest_not_enabled", language), do_quote=True)
        return False

    async def _group_context(
        self, update: Update, context: CondensaContext, admins_only: bool
    ) -> tuple[Message, Chat, User, str] | None:
        message, chat, user = (
            update.effective_message,
            update.effective_chat,
            update.effective_user,
        )
        if message is None or chat is None or user is None:
            return None
        language = context.chat_settings.language
        if chat.type not in GROUP_TYPES:
            await message.reply_text(t("groups_only", language), do_quote=True)
            return None
        if admins_only and not await is_chat_admin(context.bot, chat.id, user.id):
            await message.reply_text(t("admins_only", language), do_quote=True)
            return None
        return message, chat, user, language

    # ------------------------------------------------------------------ keeping messages

    async def record(self, update: Update, context: CondensaContext) -> None:
        """Keep a group message (or its edit) when digests are on in that group."""
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None or chat.type not in GROUP_TYPES:
            return
        user = message.from_user
        if user is not None and user.is_bot:
            return
        text = message_text(message).strip()
        if not text or text.startswith("/"):
            return
        settings = await self._archive.digest_settings(chat.id)
        if not settings.enabled:
            return
        await self._keep(message, text)

    async def _keep(self, message: Message, text: str) -> None:
        user = message.from_user
        replied = message.reply_to_message
        replied_author = replied.from_user if replied is not None else None
        await self._archive.save_messages(
            [
                ChatMessage(
                    message.chat_id,
                    message.message_id,
                    user.id if user else 0,
                    display_name(user) or (message.author_signature or ""),
                    int(message.date.timestamp()),
                    text,
                    message.message_thread_id or 0 if message.is_topic_message else 0,
                    replied.message_id if replied is not None else 0,
                    replied_author.id if replied_author is not None else 0,
                    shared_document=message.forward_origin is not None
                    and message.document is not None,
                )
            ]
        )

    async def reaction(self, update: Update, context: CondensaContext) -> None:
        """Count the reactions to a kept message: the anonymous totals Telegram sends, or one
        member's change. Telegram sends either only to a bot that is an admin of the group.
        Who reacted is never kept; a message that is not kept is not counted."""
        if update.message_reaction_count is not None:
            counted = update.message_reaction_count
            total = sum(r.total_count for r in counted.reactions)
            await self._archive.set_reactions(counted.chat.id, counted.message_id, total=total)
        elif update.message_reaction is not None:
            reacted = update.message_reaction
            change = len(reacted.new_reaction) - len(reacted.old_reaction)
            if change:
                await self._archive.set_reactions(
                    reacted.chat.id, reacted.message_id, change=change
                )

    async def pinned(self, update: Update, context: CondensaContext) -> None:
        """Remember that a kept message was pinned."""
        message = update.effective_message
        if message is not None and message.pinned_message is not None:
            await self._archive.mark_pinned(message.chat_id, message.pinned_message.message_id)

    async def record_recording(self, update: Update, context: CondensaContext) -> None:
        """Keep the transcript of a voice note (audio, video note) in a group with digests
        on, like a text message: sealed, in digests, deleted by /forget. A note that cannot be
        transcribed is left out quietly (the group is not told)."""
        message = update.effective_message
        chat = update.effective_chat
        recording = voice_in(message)
        speech = self._deps.speech
        if message is None or chat is None or recording is None or speech is None:
            return
        if chat.type not in GROUP_TYPES or (message.from_user and message.from_user.is_bot):
            return
        if not (await self._archive.digest_settings(chat.id)).enabled:
            return
        transcript = await transcribe_quietly(
            self._deps, context.bot, recording, f"a voice note in group {chat.id} was not kept"
        )
        if transcript is not None:
            await self._keep(message, "🎙 " + " ".join(transcript.text.split()))

    async def digest_on(self, update: Update, context: CondensaContext) -> None:
        """Admins: start keeping this group's messages; explain privacy mode if it hides them,
        and that reactions reach a bot only when it is an admin."""
        found = await self._group_context(update, context, admins_only=True)
        if found is None:
            return
        message, chat, _, language = found
        await self._archive.set_digest_enabled(chat.id, True)
        text = t("digest_enabled", language, days=self._deps.limits.digest_retention_days)
        if not await is_chat_admin(context.bot, chat.id, context.bot.id):
            if not context.bot.can_read_all_group_messages:
                text += "\n\n" + t("digest_privacy", language)
            text += "\n\n" + t("digest_reactions", language)
        await message.reply_text(text, do_quote=True)

    async def digest_off(self, update: Update, context: CondensaContext) -> None:
        """Admins: stop digests and delete the group's kept messages and schedule."""
        found = await self._group_context(update, context, admins_only=True)
        if found is None:
            return
        message, chat, _, language = found
        await self._archive.set_digest_enabled(chat.id, False)
        await self._archive.set_schedule(chat.id, "", "")
        _remove_job(context.job_queue, chat.id)
        await message.reply_text(t("digest_disabled", language), do_quote=True)

    # ------------------------------------------------------------------ digests

    async def digest(self, update: Update, context: CondensaContext) -> None:
        """``/digest`` [N | Nh | Nd | yesterday | since monday | link link | threads]."""
        found = await self._group_context(update, context, admins_only=False)
        if found is None:
            return
        message, chat, _, language = found
        settings = await self._archive.digest_settings(chat.id)
        now = dt.datetime.now(_zone(settings.timezone))
        window = await asyncio.to_thread(
            parse_window,
            " ".join(context.args or []),
            self._deps.limits.digest_max_messages,
            now,
        )
        if window is None:
            await message.reply_text(t("digest_usage", language), do_quote=True)
            return
        if not await self._enabled_or_say_so(message, chat.id, language):
            return
        await self.send_digest(context.bot, chat, language, window, reply_to=message)

    async def send_digest(
        self,
        bot: object,
        chat: Chat | ChatFullInfo,
        language: str,
        window: DigestWindow | None = None,
        reply_to: Message | None = None,
        quiet_when_empty: bool = False,
        scheduled: bool = False,
    ) -> bool:
        """Compute and send a digest of ``chat`` (one per thread when the window asks, or for
        a scheduled digest of a forum); returns whether one was sent.

        Raises:
            DigestDeferred: ``scheduled`` and the group's lock is held or the digest could not
                be made: nothing was posted, the caller tries again later.
        """
        window = window or DigestWindow()
        settings = await self._archive.digest_settings(chat.id)
        max_messages = self._deps.limits.digest_max_messages
        in_thread = reply_to is not None and reply_to.is_topic_message
        thread_id = reply_to.message_thread_id if reply_to is not None and in_thread else None
        unbounded = window.last is None and window.first_id is None and window.since is None
        messages = await self._archive.messages(
            chat.id,
            last=window.last or max_messages,
            since=settings.last_digest_date if unbounded else window.since,
            until=window.until,
            first_id=window.first_id,
            last_id=window.last_id,
            thread_id=None if window.per_thread else thread_id,
        )
        forum = bool(getattr(chat, "is_forum", False))
        per_thread = window.per_thread or (forum and reply_to is None)
        groups: dict[int | None, list[ChatMessage]] = {}
        if per_thread:
            for item in messages:
                groups.setdefault(item.thread_id, []).append(item)
        else:
            groups[thread_id] = messages

        async def say(html_text: str, thread: int | None, first: bool = True) -> None:
            """The first message replies to the command (unless one per thread); the rest
            follow in the chat, in the same thread."""
            if first and reply_to is not None and not per_thread:
                await reply_to.reply_html(html_text, do_quote=True, disable_web_page_preview=True)
            else:
                await bot.send_message(  # type: ignore[attr-defined]
                    chat.id,
                    html_text,
                    parse_mode="HTML",
                    disable_web_page_preview=True,
                    message_thread_id=thread or None,
                )

        # One digest of a group at a time, whichever worker runs it.
        lock = f"digest:{chat.id}"
        token = await self._deps.coordination.hold(lock, DIGEST_LOCK_SECONDS)
        if token is None:
            if scheduled:
                raise DigestDeferred("a digest of this group is being made")
            await say(escape(t("err_busy", language)), thread_id)
            return False
        sent = False
        newest = 0
        try:
            for thread, window_messages in groups.items():
                try:
                    digest = await self._digests.digest(window_messages)
                    cloud = await self._digests.word_cloud(digest) if digest.keyphrases else None
                except EmptyInput:
                    if not quiet_when_empty and not per_thread:
                        await say(escape(t("digest_too_few", language)), thread)
                    continue
                except CondensaError as error:
                    if scheduled:
                        raise DigestDeferred(str(error)) from error
                    await say(error_sentence(error, language), thread)
                    continue
                pages = render_digest(digest, language, chat.username, settings.timezone)
                if per_thread and thread:
                    pages[0] = (
                        t("digest_thread_heading", language, thread=thread) + "\n" + pages[0]
                    )
                for number, text in enumerate(pages):
                    await say(text, thread, first=number == 0)
                if cloud is not None:
                    await bot.send_photo(  # type: ignore[attr-defined]
                        chat.id,
                        cloud,
                        caption=t("digest_cloud_caption", language),
                        message_thread_id=thread or None,
                    )
                sent = True
                newest = max(newest, digest.last_date)
            if per_thread and not sent and not quiet_when_empty:
                await say(escape(t("digest_too_few", language)), thread_id)
            # "Since the last digest" is the whole group's: a digest of one thread leaves the
            # mark where it was, so the other threads' messages are still to come.
            if sent and unbounded and (per_thread or thread_id is None):
                await self._archive.mark_digest(chat.id, newest)
            return sent
        finally:
            await self._deps.coordination.release(lock, token)

    # ------------------------------------------------------------------ schedules

    async def schedule(self, update: Update, context: CondensaContext) -> None:
        """Admins: ``/schedule HH:MM [Area/City]`` or ``/schedule off``."""
        found = await self._group_context(update, context, admins_only=True)
        if found is None:
            return
        message, chat, _, language = found
        parsed = parse_schedule(list(context.args or []))
        if parsed is None:
            await message.reply_text(t("schedule_usage", language), do_quote=True)
            return
        if not await self._enabled_or_say_so(message, chat.id, language):
            return
        clock, zone = parsed
        await self._archive.set_schedule(chat.id, clock, zone)
        _remove_job(context.job_queue, chat.id)
        if not clock:
            await message.reply_text(t("schedule_off", language), do_quote=True)
            return
        self.register(context.job_queue, chat.id, clock, zone)
        await message.reply_text(
            t("schedule_set", language, time=clock, timezone=zone), do_quote=True
        )

    def register(self, job_queue: JobQueue | None, chat_id: int, clock: str, zone: str) -> None:  # type: ignore[type-arg]
        """Run this group's digest every day at ``clock`` in ``zone``."""
        if job_queue is None:
            logger.warning("no job queue: schedules are not run")
            return
        job_queue.run_daily(
            self._scheduled_job,
            schedule_time(clock, zone),
            chat_id=chat_id,
            name=f"{_JOB_PREFIX}{chat_id}",
            data=(clock, zone),
        )

    async def restore(self, application: Application, sync_seconds: float = 0) -> None:  # type: ignore[type-arg]
        """Register stored schedules and the daily retention purge (at start-up). With
        ``sync_seconds`` (several workers), schedules set or removed through another worker
        are picked up that often; each firing runs once across workers either way."""
        jobs = self._deps.jobs
        await self.sync_schedules(application.job_queue)
        if application.job_queue is not None:
            if jobs is not None:
                jobs.expect(_DIGEST_JOBS, None)
                jobs.expect(_PURGE_JOB, 2 * 86400 + 3600)
            application.job_queue.run_repeating(
                watched(jobs, _PURGE_JOB, self._purge),
                interval=dt.timedelta(days=1),
                first=5,
                name=_PURGE_JOB,
            )
            if sync_seconds:
                if jobs is not None:
                    jobs.expect(_SYNC_JOB, 5 * sync_seconds)
                application.job_queue.run_repeating(
                    watched(jobs, _SYNC_JOB, self._sync),
                    interval=sync_seconds,
                    first=sync_seconds,
                    name=_SYNC_JOB,
                )

    async def _sync(self, context: CondensaContext) -> None:
        await self.sync_schedules(context.job_queue)

    async def sync_schedules(self, job_queue: JobQueue | None) -> None:  # type: ignore[type-arg]
        """Make this process's digest jobs match the stored schedules (a job whose time is
        unchanged is kept, so a firing is never lost to a re-registration)."""
        if job_queue is None:
            return
        wanted = {
            s.chat_id: (s.schedule, s.timezone) for s in await self._archive.scheduled_chats()
        }
        for job in job_queue.jobs():
            if not job.name or not job.name.startswith(_JOB_PREFIX) or job.chat_id is None:
                continue
            if wanted.get(job.chat_id) == job.data:
                del wanted[job.chat_id]
            else:
                job.schedule_removal()
        for chat_id, (clock, zone) in wanted.items():
            try:
                self.register(job_queue, chat_id, clock, zone)
            except (ValueError, ZoneInfoNotFoundError):
                logger.warning("chat %s has an unusable schedule; skipped", chat_id)

    async def _scheduled(self, context: CondensaContext) -> None:
        """A daily firing (or its retry): the day's digest is marked sent only once it was
        sent (or there was nothing new); a failure is tried again with back-off until the day
        ends, and a worker that takes the firing holds it only while it runs."""
        job = context.job
        if job is None or job.chat_id is None:
            return
        data = job.data if isinstance(job.data, tuple) else ("", "UTC")
        clock, zone = data[0], data[1]
        attempt = data[2] if len(data) > 2 else 0
        now = dt.datetime.now(_zone(zone))
        day = data[3] if len(data) > 3 else now.date().isoformat()
        if now.date().isoformat() != day:
            logger.warning(
                "scheduled digest for %s of %s given up: its day ended", job.chat_id, day
            )
            return
        firing = f"scheduled:{job.chat_id}:{day}:{clock}"
        coordination = self._deps.coordination
        if await coordination.seen(firing):
            return  # sent today already (by this worker or another)
        token = await coordination.hold(firing, DIGEST_LOCK_SECONDS)
        if token is None:
            return  # another worker is sending it
        try:
            chat = await context.bot.get_chat(job.chat_id)
            preferences = await self._deps.store.get_preferences(chat.id)
            language = pick_language(preferences.language, None)
            await self.send_digest(
                context.bot, chat, language, quiet_when_empty=True, scheduled=True
            )
        except (TelegramError, DigestDeferred) as exc:
            delay = SCHEDULE_RETRY_SECONDS * 2 ** min(attempt, 6)
            logger.warning(
                "scheduled digest for %s not sent (%s); trying again in %.0f s",
                job.chat_id,
                exc,
                delay,
            )
            if self._deps.jobs is not None:
                self._deps.jobs.ran(_DIGEST_JOBS, exc)
            if context.job_queue is not None:
                context.job_queue.run_once(
                    self._scheduled_job,
                    delay,
                    chat_id=job.chat_id,
                    name=f"{_RETRY_PREFIX}{job.chat_id}",
                    data=(clock, zone, attempt + 1, day),
                )
            return
        finally:
            await coordination.release(firing, token)
        await coordination.mark(firing, 86400 * 2)

    async def _purge(self, context: CondensaContext) -> None:
        day = dt.datetime.now(dt.UTC).date().isoformat()
        if await self._deps.coordination.once(f"retention-purge:{day}", 86400):
            await self.purge()

    async def purge(self) -> int:
        """Delete messages kept longer than the retention period; returns how many."""
        cutoff = int(time.time()) - self._deps.limits.digest_retention_days * 86400
        deleted = await self._archive.purge_stored_before(cutoff)
        if deleted:
            logger.info("retention purge deleted %d stored messages", deleted)
        return deleted

    # ------------------------------------------------------------------ privacy

    async def opt_out(self, update: Update, context: CondensaContext) -> None:
        """A member's messages stop being kept, and those kept are deleted."""
        found = await self._group_context(update, context, admins_only=False)
        if found is None:
            return
        message, chat, user, language = found
        deleted = await self._archive.set_opt_out(chat.id, user.id, True)
        await message.reply_text(
            tn("optout_done", deleted, language, name=user.first_name), do_quote=True
        )

    async def opt_in(self, update: Update, context: CondensaContext) -> None:
        """Undo /optout."""
        found = await self._group_context(update, context, admins_only=False)
        if found is None:
            return
        message, chat, user, language = found
        await self._archive.set_opt_out(chat.id, user.id, False)
        await message.reply_text(t("optin_done", language, name=user.first_name), do_quote=True)

    async def forget(self, update: Update, context: CondensaContext) -> None:
        """Delete everything kept about the member in this group."""
        found = await self._group_context(update, context, admins_only=False)
        if found is None:
            return
        message, chat, user, language = found
        deleted = await self._archive.forget_user(chat.id, user.id)
        await message.reply_text(
            tn("forget_done", deleted, language, name=user.first_name), do_quote=True
        )

    async def membership(self, update: Update, context: CondensaContext) -> None:
        """Removed from a group: delete everything about it and its schedule."""
        change: ChatMemberUpdated | None = update.my_chat_member
        if change is None or change.chat.type not in GROUP_TYPES:
            return
        if change.new_chat_member.status in GONE_STATUSES:
            await self._archive.forget_chat(change.chat.id)
            _remove_job(context.job_queue, change.chat.id)
            logger.info("removed from chat %s: its stored data is deleted", change.chat.id)

    # ------------------------------------------------------------------ history import

    async def import_export(self, update: Update, context: CondensaContext) -> None:
        """An admin sends a Telegram Desktop export (result.json or its zip) with ``/import``."""
        message, chat, user = (
            update.effective_message,
            update.effective_chat,
            update.effective_user,
        )
        if message is None or chat is None or user is None or message.document is None:
            return
        language = context.chat_settings.language
        document = message.document
        limit = self._deps.limits.max_file_bytes
        try:
            if document.file_size and document.file_size > limit:
                raise InputTooLarge(document.file_size, limit, unit="bytes")
            data = bytes(await (await document.get_file()).download_as_bytearray())
            export = await self._exports.read_export(data)
        except NotAnExport:
            await message.reply_text(t("import_bad", language), do_quote=True)
            return
        except CondensaError as error:
            await message.reply_html(error_sentence(error, language), do_quote=True)
            return
        if chat.type in GROUP_TYPES:
            target = chat.id
            if export.chat_id is not None and export.chat_id != chat.id:
                await message.reply_text(t("import_wrong_chat", language), do_quote=True)
                return
        elif export.chat_id is not None:
            target = export.chat_id
        else:
            await message.reply_text(t("import_unknown_chat", language), do_quote=True)
            return
        if not await is_chat_admin(context.bot, target, user.id):
            await message.reply_text(t("admins_only", language), do_quote=True)
            return
        if not (await self._archive.digest_settings(target)).enabled:
            await message.reply_text(t("digest_not_enabled", language), do_quote=True)
            return
        rows = [
            ChatMessage(target, m.message_id, m.user_id, m.author, m.date, m.text)
            for m in export.messages
        ]
        saved = await self._archive.save_messages(rows)
        await message.reply_text(
            tn("import_done", saved, language, title=export.title or str(target)),
            do_quote=True,
        )


def _remove_job(job_queue: JobQueue | None, chat_id: int) -> None:  # type: ignore[type-arg]
    if job_queue is None:
        return
    for name in (f"{_JOB_PREFIX}{chat_id}", f"{_RETRY_PREFIX}{chat_id}"):
        for job in job_queue.get_jobs_by_name(name):
            job.schedule_removal()
