"""/summary, /keywords, and automatic summaries of long or forwarded text in private chats."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import (
    Message,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    Update,
)
from telegram.constants import MessageLimit

from handlers.chat_context import CondensaContext
from handlers.deps import HandlerDeps
from handlers.errors import error_sentence
from handlers.i18n import pick_language, t, tn
from handlers.inputs import (
    InputText,
    VoiceMedia,
    command_arguments,
    message_text,
    read_document,
    read_link_or_text,
    read_photo,
    resolve_input,
    voice_in,
)
from handlers.progress import WorkInProgress
from handlers.render import (
    document_heading,
    escape,
    ocr_note,
    render_keywords,
    render_read_text,
    render_summary,
)
from handlers.voice import answer_recording, transcribe_quietly, transcript_reply
from handlers.work import defer_current_update
from services.core.errors import CondensaError, InputTooLarge
from services.core.types import ChatMessage, ChatPreferences, SummaryOptions, Transcript

logger = logging.getLogger(__name__)

_CAPTION_COMMAND_RE = re.compile(
    r"^/(?P<command>summary|keywords)(?:@(?P<bot>\w+))?(?:\s|$)", re.I
)
QUEUE_NOTICE_SECONDS = 3
"""A longer expected wait is shown in the placeholder, with the place in line."""
_MAX_BATCH_WAIT_FACTOR = 5
"""A stream of forwards is answered at the latest after this many windows."""


def _joined(*notes: str) -> str:
    return " ".join(note for note in notes if note)


def forwarded_from(message: Message) -> str:
    """Who wrote a forwarded message, as its forward shows it ("" when not forwarded)."""
    origin = message.forward_origin
    if isinstance(origin, MessageOriginUser):
        return origin.sender_user.full_name
    if isinstance(origin, MessageOriginHiddenUser):
        return origin.sender_user_name
    if isinstance(origin, MessageOriginChat):
        return origin.sender_chat.title or ""
    if isinstance(origin, MessageOriginChannel):
        return origin.chat.title or ""
    return ""


@dataclass
class _Batch:
    """Messages from one user waiting to be summarized together."""

    messages: list[Message] = field(default_factory=list)
    timer: asyncio.Task[None] | None = None
    first_seen: float = 0.0
    update_ids: list[int] = field(default_factory=list)
    """Updates kept pending until the batch is answered (re-run after a restart otherwise)."""
    chars: int = 0
    left_out: int = 0
    """Messages past the batch's caps (count, characters): counted, not kept."""
    transcripts: dict[int, Transcript] = field(default_factory=dict)
    """Forwarded voice notes in the batch, by message id."""
    read: dict[int, str] = field(default_factory=dict)
    """The text of album photos in the batch (by OCR), by message id."""
    context: contextvars.Context | None = None
    """Where its answer runs: the latest forward's update (its sends are recorded under it)."""

    def text_of(self, message: Message) -> str:
        """A message's text, its transcript, or the text read on its photo."""
        transcript = self.transcripts.get(message.message_id)
        if transcript is not None:
            return "🎙 " + " ".join(transcript.text.split())
        return self.read.get(message.message_id) or message_text(message)


class SummaryHandlers:
    """Summaries and keyphrases on demand, plus the private-chat automatic summary."""

    def __init__(self, deps: HandlerDeps) -> None:
        self._deps = deps
        self._batches: dict[tuple[int, int], _Batch] = {}

    @staticmethod
    def _context(
        update: Update, context: CondensaContext
    ) -> tuple[Message, ChatPreferences, str] | None:
        message = update.effective_message
        if message is None or update.effective_chat is None:
            return None
        settings = context.chat_settings
        return message, settings.preferences, settings.language

    async def summary_command(self, update: Update, context: CondensaContext) -> None:
        """Summarize the command's text, the replied-to message, or a text file."""
        await self._command(update, context, "summary")

    async def keywords_command(self, update: Update, context: CondensaContext) -> None:
        """Rank the key phrases of the command's text, the replied-to message, or a text file."""
        await self._command(update, context, "keywords")

    async def caption_command(self, update: Update, context: CondensaContext) -> None:
        """A document sent with ``/summary`` or ``/keywords`` as its caption."""
        message = update.effective_message
        if message is None:
            return
        match = _CAPTION_COMMAND_RE.match(message.caption or "")
        if match is None:
            return
        addressed_to = match.group("bot")
        if addressed_to and addressed_to.lower() != (context.bot.username or "").lower():
            return
        await self._command(update, context, match.group("command").lower())

    async def _command(self, update: Update, context: CondensaContext, kind: str) -> None:
        resolved = self._context(update, context)
        if resolved is None:
            return
        message, preferences, language = resolved
        await self._answer_waiting_forwards(message)
        run = self._summarize if kind == "summary" else self._keywords
        recording = None
        if not command_arguments(message):
            # The recording this command is the caption of (a voice note, an audio document),
            # else the one it replies to when it carries no file of its own.
            recording = voice_in(message)
            if recording is None and message.document is None and not message.photo:
                recording = voice_in(message.reply_to_message)
        if recording is not None:
            await answer_recording(
                self._deps,
                message,
                context.bot,
                recording,
                language,
                lambda source: run(source, preferences, language),
            )
            return
        try:
            source = await resolve_input(
                message,
                context.bot,
                self._deps.limits.max_file_bytes,
                self._deps.documents,
                self._deps.links,
                preferences.language or None,
            )
        except CondensaError as error:
            await message.reply_html(error_sentence(error, language), do_quote=True)
            return
        if source is None:
            await message.reply_text(t(f"no_input_{kind}", language), do_quote=True)
            return
        await self._answer(message, language, lambda: run(source, preferences, language))

    async def _answer(
        self, message: Message, language: str, work: Callable[[], Awaitable[list[str]]]
    ) -> None:
        placeholder = t("working", language)
        if self._deps.queue_wait is not None:
            ahead, wait = self._deps.queue_wait()
            if ahead and wait >= QUEUE_NOTICE_SECONDS:
                placeholder = t("work_queued", language, ahead=ahead, seconds=round(wait))
        async with WorkInProgress(message, placeholder) as progress:
            try:
                replies = await work()
            except CondensaError as error:
                replies = [error_sentence(error, language)]
            await progress.deliver(replies)

    async def _summarize(
        self, source: InputText, preferences: ChatPreferences, language: str
    ) -> list[str]:
        self._check_size(source)
        options = SummaryOptions(method=preferences.method, length=preferences.length)
        summary = await self._deps.summarizer.summarize(source.text, options)
        title, note = document_heading(source, language)
        doubt = ocr_note(source.document, language, self._deps.limits.ocr_min_confidence)
        return render_summary(summary, language, title=title, note=_joined(doubt, note))

    async def _keywords(
        self, source: InputText, preferences: ChatPreferences, language: str
    ) -> list[str]:
        self._check_size(source)
        result = await self._deps.keywords.extract(
            source.text, top_n=self._deps.limits.keywords_top_n
        )
        title, note = document_heading(source, language)
        doubt = ocr_note(source.document, language, self._deps.limits.ocr_min_confidence)
        return render_keywords(result, language, title=title, note=_joined(doubt, note))

    def _check_size(self, source: InputText) -> None:
        limit = self._deps.limits.max_input_chars
        if len(source.text) > limit:
            raise InputTooLarge(len(source.text), limit)

    async def private_document(self, update: Update, context: CondensaContext) -> None:
        """A document sent in a private chat without a command is summarized."""
        resolved = self._context(update, context)
        if resolved is None:
            return
        message, preferences, language = resolved
        if message.document is None:
            return
        recording = voice_in(message)
        if recording is not None:
            await self._summarize_recording(message, context, recording, preferences, language)
            return
        try:
            source = await read_document(
                context.bot,
                message.document,
                self._deps.limits.max_file_bytes,
                self._deps.documents,
                preferences.language or None,
            )
        except CondensaError as error:
            await message.reply_html(error_sentence(error, language), do_quote=True)
            return
        await self._answer(
            message, language, lambda: self._summarize(source, preferences, language)
        )

    async def private_recording(self, update: Update, context: CondensaContext) -> None:
        """A voice note, audio file or video note sent in a private chat: its transcript and
        summary."""
        resolved = self._context(update, context)
        if resolved is None:
            return
        message, preferences, language = resolved
        recording = voice_in(message)
        if recording is None:
            return
        key = (message.chat_id, message.from_user.id if message.from_user else 0)
        if message.forward_origin is None and key not in self._batches:
            await self._summarize_recording(message, context, recording, preferences, language)
            return
        # A forwarded note joins the forward batch as its transcript, like forwarded text.
        self._hold_batch(key)
        transcript = await transcribe_quietly(
            self._deps, context.bot, recording, "a forwarded voice note was left out of its batch"
        )
        self._enqueue(key, message, transcript)

    async def _summarize_recording(
        self,
        message: Message,
        context: CondensaContext,
        recording: VoiceMedia,
        preferences: ChatPreferences,
        language: str,
    ) -> None:
        """A recording's transcript, then its summary."""

        async def summary(source: InputText) -> list[str]:
            return await self._summarize(source, preferences, language)

        await answer_recording(self._deps, message, context.bot, recording, language, summary)

    async def private_photo(self, update: Update, context: CondensaContext) -> None:
        """A photo sent in a private chat: its text by OCR, summarized when it is long."""
        resolved = self._context(update, context)
        if resolved is None:
            return
        message, preferences, language = resolved
        if not message.photo:
            return
        if message.media_group_id is not None:
            await self._album_page(message, context, preferences)
            return

        async def work() -> list[str]:
            source = await read_photo(
                context.bot,
                message,
                self._deps.limits.max_file_bytes,
                self._deps.documents,
                preferences.language or None,
            )
            if len(source.text) >= self._deps.limits.auto_summary_min_chars:
                return await self._summarize(source, preferences, language)
            doubt = ocr_note(source.document, language, self._deps.limits.ocr_min_confidence)
            return render_read_text(source, language, doubt)

        await self._answer(message, language, work)

    async def _album_page(
        self, message: Message, context: CondensaContext, preferences: ChatPreferences
    ) -> None:
        """A photo of an album (pages photographed together) joins the batch with its text,
        so the album gets one summary of all its pages."""
        key = (message.chat_id, message.from_user.id if message.from_user else 0)
        self._hold_batch(key)
        text = ""
        try:
            source = await read_photo(
                context.bot,
                message,
                self._deps.limits.max_file_bytes,
                self._deps.documents,
                preferences.language or None,
            )
            text = source.text
        except CondensaError as error:
            logger.info("a photo of an album was left out: %s", error)
        self._enqueue(key, message, text=text)

    async def private_text(self, update: Update, context: CondensaContext) -> None:
        """Long or forwarded text in a private chat: batch it briefly, then summarize it."""
        resolved = self._context(update, context)
        if resolved is None:
            return
        message, preferences, language = resolved
        text = message_text(message)
        if self._deps.links.find_link(text):
            await self._link(message, text, preferences, language)
            return
        forwarded = message.forward_origin is not None
        key = (message.chat_id, message.from_user.id if message.from_user else 0)
        pending = key in self._batches
        if not forwarded and not pending and len(text) < self._deps.limits.auto_summary_min_chars:
            min_chars = self._deps.limits.auto_summary_min_chars
            await message.reply_text(
                t("short_private", language, min_chars=min_chars), do_quote=True
            )
            return
        self._enqueue(key, message)

    async def _link(
        self, message: Message, text: str, preferences: ChatPreferences, language: str
    ) -> None:
        async def work() -> list[str]:
            source = await read_link_or_text(text, "message", self._deps.links)
            return await self._summarize(source, preferences, language)

        await self._answer(message, language, work)

    def _hold_batch(self, key: tuple[int, int]) -> None:
        """Stop a pending batch's timer while a message of it is read (a transcript, a
        photo's text): :meth:`_enqueue` reopens the window once it is."""
        batch = self._batches.get(key)
        if batch is not None and batch.timer is not None:
            batch.timer.cancel()

    def _enqueue(
        self,
        key: tuple[int, int],
        message: Message,
        transcript: Transcript | None = None,
        text: str = "",
    ) -> None:
        loop = asyncio.get_running_loop()
        batch = self._batches.setdefault(key, _Batch(first_seen=loop.time()))
        limits = self._deps.limits
        size = len(transcript.text if transcript else text or message_text(message))
        if (
            len(batch.messages) < limits.forward_batch_max_messages
            and batch.chars + size <= limits.max_input_chars
        ) or not batch.messages:
            batch.messages.append(message)
            batch.chars += size
            if transcript is not None:
                batch.transcripts[message.message_id] = transcript
            if text:
                batch.read[message.message_id] = text
        else:
            batch.left_out += 1  # a flood of forwards holds a count, not the messages
        update_id = defer_current_update()
        if update_id is not None:
            batch.update_ids.append(update_id)
        if batch.timer is not None:
            batch.timer.cancel()
        window = self._deps.limits.forward_batch_seconds
        deadline = batch.first_seen + window * _MAX_BATCH_WAIT_FACTOR
        delay = max(0.0, min(window, deadline - loop.time()))
        batch.context = contextvars.copy_context()
        batch.timer = asyncio.create_task(self._flush_later(key, delay), context=batch.context)

    async def _answer_waiting_forwards(self, message: Message) -> None:
        """Forwards still waiting for their batch window are answered before a command that
        came after them: answers keep the order of what was sent (a take-over can hand a
        worker both at once)."""
        key = (message.chat_id, message.from_user.id if message.from_user else 0)
        batch = self._batches.get(key)
        if batch is None or not batch.messages:
            return
        if batch.timer is not None:
            batch.timer.cancel()  # still in its window: nothing of it has run yet
        batch.timer = asyncio.create_task(self._flush_later(key, 0.0), context=batch.context)
        await batch.timer

    async def _flush_later(self, key: tuple[int, int], delay: float) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(delay)
            batch = self._batches.pop(key, None)
            if batch is None or not batch.messages:
                return
            try:
                if len(batch.messages) == 1 and batch.transcripts:
                    await self._forwarded_recording(batch)
                else:
                    await self._summarize_batch(batch.messages, batch.left_out, batch.text_of)
            except Exception:  # a background task has no error handler to reach
                logger.exception("summarizing a batch of %d messages failed", len(batch.messages))
            if self._deps.finish_updates is not None:
                await self._deps.finish_updates(batch.update_ids)

    async def _forwarded_recording(self, batch: _Batch) -> None:
        """One forwarded voice note on its own: answered as a voice note is."""
        message = batch.messages[0]
        transcript = batch.transcripts[message.message_id]
        preferences = await self._deps.store.get_preferences(message.chat_id)
        user = message.from_user
        language = pick_language(preferences.language, user.language_code if user else None)

        async def about(source: InputText) -> list[str]:
            return await self._summarize(source, preferences, language)

        await self._answer(
            message, language, lambda: transcript_reply(transcript, language, about)
        )

    async def _summarize_batch(
        self,
        messages: list[Message],
        left_out: int = 0,
        text_of: Callable[[Message], str] = message_text,
    ) -> None:
        messages.sort(key=lambda m: m.message_id)
        last = messages[-1]
        preferences = await self._deps.store.get_preferences(last.chat_id)
        user = last.from_user
        language = pick_language(preferences.language, user.language_code if user else None)
        spoken = [m for m in messages if text_of(m).strip()]
        said = [(forwarded_from(m), text_of(m)) for m in spoken]
        conversation = [
            ChatMessage(last.chat_id, m.message_id, 0, author, int(m.date.timestamp()), text)
            for m, (author, text) in zip(spoken, said, strict=True)
        ]
        self._deps.forwarded.remember(last.chat_id, conversation, self._deps.clock())
        if len({author for author, _ in said if author}) >= 2:
            # A forwarded conversation reads as one: "Name: text" turns, which the summary
            # service recognizes (conversation heads, a length in words).
            joined = "\n".join(f"{a}: {x}" if a else x for a, x in said)
        else:
            joined = "\n\n".join(text for _, text in said)
        source = InputText(joined, "message")

        async def work() -> list[str]:
            pages = await self._summarize(source, preferences, language)
            if left_out:
                limit = self._deps.limits.forward_batch_max_messages
                note = escape(tn("batch_more", left_out, language, limit=limit))
                if len(pages[-1]) + len(note) + 2 <= MessageLimit.MAX_TEXT_LENGTH:
                    pages[-1] += "\n\n" + note
                else:
                    pages.append(note)
            return pages

        await self._answer(last, language, work)

    async def shutdown(self) -> None:
        """Cancel pending batch timers: their updates stay pending in the inbox and are
        handled again, batched again, after the restart."""
        for batch in self._batches.values():
            if batch.timer is not None:
                batch.timer.cancel()
        self._batches.clear()
