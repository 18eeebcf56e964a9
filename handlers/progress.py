"""Showing that work is under way: a placeholder reply and a "typing…" action kept alive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from telegram import Message
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError

logger = logging.getLogger(__name__)

TYPING_INTERVAL = 4.0
"""Telegram shows a chat action for ~5 s; re-send it a little sooner."""
STOP_TYPING_SECONDS = 2.0


class WorkInProgress:
    """Async context: reply with a placeholder, keep "typing…" alive, then deliver the answer.

    Args:
        message: the user's message being answered (replies keep its forum topic).
        placeholder_text: the text of the placeholder.
    """

    def __init__(self, message: Message, placeholder_text: str) -> None:
        self._message = message
        self._placeholder_text = placeholder_text
        self._placeholder: Message | None = None
        self._typing: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WorkInProgress:
        await self._send_action()
        self._typing = asyncio.create_task(self._keep_typing())
        self._placeholder = await self._message.reply_text(self._placeholder_text, do_quote=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_typing()

    async def stop_typing(self) -> None:
        """Stop re-sending the chat action (waiting at most a moment for it: the action is
        cosmetic and must never hold the answer back)."""
        if self._typing is not None:
            typing, self._typing = self._typing, None
            typing.cancel()
            done, _ = await asyncio.wait({typing}, timeout=STOP_TYPING_SECONDS)
            if not done:
                logger.warning("a chat action did not stop in time; answering anyway")
            for task in done:
                with contextlib.suppress(asyncio.CancelledError, TelegramError):
                    task.result()

    async def _send_action(self) -> None:
        thread_id = self._message.message_thread_id if self._message.is_topic_message else None
        try:
            await self._message.get_bot().send_chat_action(
                self._message.chat_id, ChatAction.TYPING, message_thread_id=thread_id
            )
        except TelegramError as exc:  # an action is cosmetic: never fail the work for it
            logger.debug("chat action failed: %s", exc)

    async def _keep_typing(self) -> None:
        while True:
            await asyncio.sleep(TYPING_INTERVAL)
            await self._send_action()

    async def show(self, html_text: str) -> None:
        """Edit the placeholder to an intermediate state (streaming); identical text is skipped."""
        if self._placeholder is None:
            return
        try:
            await self._placeholder.edit_text(
                html_text, parse_mode=ParseMode.HTML, disable_web_page_preview=True
            )
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise

    async def deliver(self, messages: list[str]) -> None:
        """Edit the placeholder into the first message, send the rest as replies."""
        await self.stop_typing()
        if not messages:
            return
        first, rest = messages[0], messages[1:]
        if self._placeholder is None:
            await self._message.reply_html(first, do_quote=True, disable_web_page_preview=True)
        else:
            try:
                await self._placeholder.edit_text(
                    first, parse_mode=ParseMode.HTML, disable_web_page_preview=True
                )
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    raise
        for text in rest:
            await self._message.reply_html(text, do_quote=False, disable_web_page_preview=True)


class DraftInProgress(WorkInProgress):
    """In a private chat: stream into a message draft (``sendMessageDraft``), the way
    Telegram's own clients show text being written, then send the answer as one message.
    No placeholder is sent and nothing is edited.

    Args:
        message: the user's message being answered (its id is the draft's id).
        placeholder_text: shown in the draft until the first words arrive.
    """

    async def __aenter__(self) -> DraftInProgress:
        await self._send_action()
        self._typing = asyncio.create_task(self._keep_typing())
        await self.show(self._placeholder_text, html=False)
        return self

    async def show(self, html_text: str, html: bool = True) -> None:
        """Replace the draft's text."""
        await self._message.get_bot().send_message_draft(
            self._message.chat_id,
            self._message.message_id,
            html_text,
            parse_mode=ParseMode.HTML if html else None,
        )

    async def deliver(self, messages: list[str]) -> None:
        """Send the answer: the first message as a reply, the rest after it."""
        await self.stop_typing()
        for index, text in enumerate(messages):
            await self._message.reply_html(
                text, do_quote=index == 0, disable_web_page_preview=True
            )
