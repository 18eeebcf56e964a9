"""/generate, /ask and /cancel: a local LLM writes, streamed into the placeholder by edits."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from telegram import Message, Update
from telegram.constants import ChatType

from handlers.access import utc_day
from handlers.chat_context import CondensaContext
from handlers.deps import HandlerDeps
from handlers.errors import error_sentence
from handlers.i18n import t
from handlers.inputs import command_arguments, message_text, read_document
from handlers.progress import DraftInProgress, WorkInProgress
from handlers.render import escape, pack_blocks, paragraph_blocks, split_plain
from handlers.work import current_work
from services.core.errors import CondensaError
from services.core.protocols import TextGenerator
from services.core.types import Prompt, Usage

logger = logging.getLogger(__name__)
CURSOR = " ▌"
_PREVIEW_LIMIT = 3900


QUEUE_NOTICE_SECONDS = 3
"""A wait longer than this is shown in the placeholder with the place in line."""


class GenerateHandlers:
    """Text generation in chat, one running generation per chat, cancellable."""

    def __init__(self, deps: HandlerDeps) -> None:
        self._deps = deps
        self._running: dict[int, threading.Event] = {}
        self._restarting = False

    def stop_all(self) -> None:
        """The bot is restarting: stop every generation; each says so in its answer."""
        self._restarting = True
        for event in self._running.values():
            event.set()

    async def generate(self, update: Update, context: CondensaContext) -> None:
        """Continue the text after the command."""
        message = update.effective_message
        if message is None:
            return
        language = context.chat_settings.language
        text = command_arguments(message)
        if not text:
            await message.reply_text(t("no_input_generate", language), do_quote=True)
            return
        await self._run(message, Prompt(text, instruct=False), language)

    async def ask(self, update: Update, context: CondensaContext) -> None:
        """Answer a question; with a reply, about the replied-to message or text file."""
        message = update.effective_message
        if message is None:
            return
        language = context.chat_settings.language
        question = command_arguments(message)
        reference = ""
        replied = message.reply_to_message
        try:
            if replied is not None and replied.document is not None:
                document = await read_document(
                    context.bot,
                    replied.document,
                    self._deps.limits.max_file_bytes,
                    self._deps.documents,
                )
                reference = document.text
            elif replied is not None:
                reference = message_text(replied)
        except CondensaError as error:
            await message.reply_html(error_sentence(error, language), do_quote=True)
            return
        if not question and not reference:
            await message.reply_text(t("no_input_ask", language), do_quote=True)
            return
        prompt = Prompt(question or t("ask_default_instruction", language), True, reference)
        await self._run(message, prompt, language)

    async def cancel(self, update: Update, context: CondensaContext) -> None:
        """Stop the generation running in this chat."""
        message = update.effective_message
        if message is None:
            return
        language = context.chat_settings.language
        running = self._running.get(message.chat_id)
        if running is None:
            await message.reply_text(t("cancel_none", language), do_quote=True)
            return
        running.set()
        await message.reply_text(t("cancel_done", language), do_quote=True)

    async def _run(self, message: Message, prompt: Prompt, language: str) -> None:
        generator = self._deps.generator
        if generator is None:
            await message.reply_text(t("generation_off", language), do_quote=True)
            return
        if message.chat_id in self._running:
            await message.reply_text(t("generation_running", language), do_quote=True)
            return
        cancel = threading.Event()
        self._running[message.chat_id] = cancel
        group = message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
        limits = self._deps.limits
        interval = (
            limits.stream_edit_seconds_group if group else limits.stream_edit_seconds_private
        )
        try:
            ahead, wait = generator.expected_wait()
            placeholder = t("writing", language)
            if ahead and wait >= QUEUE_NOTICE_SECONDS:
                placeholder = t("generation_queued", language, ahead=ahead, seconds=round(wait))
            # Private chats stream into a draft; groups see one message edited at a pace.
            shown = WorkInProgress if group else DraftInProgress
            async with shown(message, placeholder) as progress:
                try:
                    text, tokens, broken = await self._stream(
                        generator, prompt, cancel, progress, interval
                    )
                except CondensaError as error:
                    await progress.deliver([error_sentence(error, language)])
                    return
                blocks = self._final(text, cancel.is_set() and not self._restarting, language)
                if self._restarting:
                    blocks.append(f"<i>{escape(t('generation_restart', language))}</i>")
                if broken is not None:  # keep what arrived, and say it was cut
                    blocks.append(f"<i>{error_sentence(broken, language)}</i>")
                await progress.deliver(pack_blocks(blocks))
                await self._record_tokens(message, tokens)
        finally:
            self._running.pop(message.chat_id, None)

    @staticmethod
    async def _stream(
        generator: TextGenerator,
        prompt: Prompt,
        cancel: threading.Event,
        progress: WorkInProgress,
        interval: float,
    ) -> tuple[str, int, CondensaError | None]:
        """The text, how many pieces (tokens, for the local engines) arrived, and the error
        that broke the stream after some text (raised when nothing had arrived)."""
        loop = asyncio.get_running_loop()
        text = ""
        pieces = 0
        shown = ""
        last_edit = -interval  # the first words are shown at once, later edits are throttled
        try:
            async for piece in generator.stream(prompt, cancel):
                text += piece
                pieces += 1
                preview = text.strip()
                # Telegram allows about one edit per second per chat (fewer in groups).
                if preview and preview != shown and loop.time() - last_edit >= interval:
                    first = split_plain(preview, _PREVIEW_LIMIT)[0]
                    await progress.show(escape(first) + CURSOR)
                    shown = preview
                    last_edit = loop.time()
        except CondensaError as error:
            if not text.strip():
                raise
            return text.strip(), pieces, error
        return text.strip(), pieces, None

    async def _record_tokens(self, message: Message, tokens: int) -> None:
        """Count what the model wrote against the user's and the group's daily quota."""
        ledger = self._deps.ledger
        if ledger is None or message.from_user is None or not tokens:
            return
        day = utc_day(time.time())
        work = current_work.get()
        once = f"{work.update_id}:tokens" if work is not None else None
        used = Usage(tokens=tokens)
        await ledger.add_usage(day, "user", message.from_user.id, used, once_key=once)
        if message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
            await ledger.add_usage(day, "chat", message.chat_id, used, once_key=once)

    @staticmethod
    def _final(text: str, stopped: bool, language: str) -> list[str]:
        blocks = paragraph_blocks(text) if text else [escape(t("generation_empty", language))]
        if stopped:
            blocks.append(f"<i>{escape(t('generation_stopped', language))}</i>")
        return blocks
