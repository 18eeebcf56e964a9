"""``/ask``: about the history of a group with digests on, or of a conversation forwarded in
private; otherwise (or as a reply to a message) the question goes to the LLM."""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatType

from handlers.chat_context import CondensaContext
from handlers.deps import HandlerDeps
from handlers.errors import error_sentence
from handlers.generate import GenerateHandlers
from handlers.i18n import t, tn
from handlers.inputs import command_arguments
from handlers.render import digest_sentence, escape, pack_blocks
from services.core.errors import CondensaError
from services.core.types import ChatMessage, HistoryAnswer

GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP)


class AskHandlers:
    """Routes ``/ask`` to the history search or to the LLM."""

    def __init__(self, deps: HandlerDeps, generate: GenerateHandlers) -> None:
        self._deps = deps
        self._generate = generate

    async def ask(self, update: Update, context: CondensaContext) -> None:
        """``/ask question``: from the kept or forwarded messages when there are any."""
        message = update.effective_message
        history = self._deps.history
        if message is None or history is None or message.reply_to_message is not None:
            await self._generate.ask(update, context)
            return
        language = context.chat_settings.language
        question = command_arguments(message)
        group = message.chat.type in GROUP_TYPES
        messages = await self._history(message, group)
        if messages is None:
            await self._generate.ask(update, context)
            return
        if not question:
            await message.reply_text(t("ask_usage", language), do_quote=True)
            return
        try:
            answer = await history.ask(question, messages)
        except CondensaError as error:
            await message.reply_html(error_sentence(error, language), do_quote=True)
            return
        if not answer.sentences:
            days = self._deps.limits.digest_retention_days
            nothing = (
                t("ask_nothing", language, days=days)
                if group
                else t("ask_nothing_forwarded", language)
            )
            await message.reply_text(nothing, do_quote=True)
            return
        username = message.chat.username
        for page in render_answer(answer, language, username):
            await message.reply_html(page, do_quote=True, disable_web_page_preview=True)

    async def _history(self, message: Message, group: bool) -> list[ChatMessage] | None:
        """The messages to search; None when this chat has no history to ask about."""
        now = self._deps.clock()
        if not group:
            return self._deps.forwarded.recall(message.chat_id, now) or None
        archive = self._deps.archive
        if archive is None or not (await archive.digest_settings(message.chat_id)).enabled:
            return None
        since = int(now) - self._deps.limits.digest_retention_days * 86400
        return await archive.messages(
            message.chat_id, since=since, last=self._deps.limits.digest_max_messages
        )


def render_answer(answer: HistoryAnswer, language: str, username: str | None) -> list[str]:
    """The reply: the answer's sentences, each linked to the messages it rests on."""
    if answer.written_by:
        heading = t("ask_answer_heading", language)
    else:
        count = tn("count_messages", len(answer.sentences), language)
        heading = t("ask_heading", language, messages=count)
    lines = "\n".join("• " + digest_sentence(s, username) for s in answer.sentences)
    blocks = [f"{heading}\n{lines}"]
    if answer.written_by:
        note = t("digest_written_by", language, model=answer.written_by)
        blocks.append(f"<i>{escape(note)}</i>")
    return pack_blocks(blocks)
