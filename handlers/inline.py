"""Inline mode: ``@bot <link or text>`` in any chat offers "Summary" and "Key phrases".

An inline query carries at most 256 characters, so a link is the common case: the page is
fetched with the same rules as links sent to the bot (no private addresses, size and time
caps). Answers are kept for an hour by the query's hash, so the same link asked again (by
anyone) is answered from memory; Telegram caches them too (``cache_time``). Work that would
run past Telegram's inline deadline is given up and answered with nothing. A query that makes
the bot work counts against the user's own daily quotas; over one, the results' button says
when it resets.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from cachetools import TTLCache
from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Update,
)
from telegram.constants import ParseMode

from handlers.access import allowed_in_private, quota_elsewhere, until_midnight
from handlers.chat_context import CondensaContext
from handlers.deps import HandlerDeps
from handlers.i18n import pick_language, t
from handlers.inputs import read_link_or_text
from handlers.render import document_heading, render_keywords, render_summary, short_quote
from services.core.errors import CondensaError
from services.core.types import Length, SummaryOptions

logger = logging.getLogger(__name__)

INLINE_SECONDS = 8.0
"""Telegram drops an inline answer that comes too late; stop working before that."""
MIN_QUERY_CHARS = 3
CACHE_SECONDS = 3600
TELEGRAM_CACHE_SECONDS = 300


class InlineHandlers:
    """Answers inline queries with a summary and the key phrases of a link or a text."""

    def __init__(self, deps: HandlerDeps) -> None:
        self._deps = deps
        self._answers: TTLCache[str, list[InlineQueryResultArticle]] = TTLCache(512, CACHE_SECONDS)
        self.computed = 0
        """Answers computed (not served from memory): for tests and metrics."""

    async def answer(self, update: Update, context: CondensaContext) -> None:
        """Answer ``@bot <query>``: from memory when asked before, else read and condense."""
        query = update.inline_query
        if query is None:
            return
        user = query.from_user
        language = pick_language(None, user.language_code)
        text = query.query.strip()
        if len(text) < MIN_QUERY_CHARS or not await self._allowed(update):
            await query.answer([], cache_time=5, button=self._help(language))
            return
        key = hashlib.sha256(f"{language}\n{text}".encode()).hexdigest()
        results = self._answers.get(key)
        if results is None:
            # Only work done counts: an answer from memory costs the user nothing.
            exceeded = await quota_elsewhere(self._deps, user, update.update_id, len(text))
            if exceeded:
                wait = until_midnight(self._deps.clock())
                button = InlineQueryResultsButton(
                    t("inline_quota", language, wait=wait), start_parameter="quota"
                )
                await query.answer([], cache_time=5, is_personal=True, button=button)
                return
            try:
                results = await asyncio.wait_for(
                    self._results(text, language, key), INLINE_SECONDS
                )
            except TimeoutError:
                logger.info("an inline query took too long; answered with nothing")
                results = []
            except CondensaError as error:
                logger.info("an inline query could not be answered: %s", error)
                results = []
            if results:
                self._answers[key] = results
        await query.answer(
            results,
            cache_time=TELEGRAM_CACHE_SECONDS,
            is_personal=False,
            button=self._help(language),
        )

    @staticmethod
    def _help(language: str) -> InlineQueryResultsButton:
        return InlineQueryResultsButton(t("inline_button", language), start_parameter="inline")

    async def _allowed(self, update: Update) -> bool:
        user = update.effective_user
        return user is not None and await allowed_in_private(self._deps, user)

    async def _results(self, text: str, language: str, key: str) -> list[InlineQueryResultArticle]:
        source = await read_link_or_text(text, "inline", self._deps.links)
        results = []
        title, note = document_heading(source, language)
        try:
            summary = await self._deps.summarizer.summarize(
                source.text, SummaryOptions(length=Length.SHORT)
            )
        except CondensaError as error:
            logger.info("no inline summary: %s", error)
        else:
            page = render_summary(summary, language, title=title, note=note)[0]
            results.append(
                InlineQueryResultArticle(
                    f"s{key[:30]}",
                    t("inline_summary", language),
                    InputTextMessageContent(page, parse_mode=ParseMode.HTML),
                    description=short_quote(" ".join(summary.sentences), 100),
                )
            )
        try:
            found = await self._deps.keywords.extract(
                source.text, top_n=self._deps.limits.keywords_top_n
            )
        except CondensaError as error:
            logger.info("no inline key phrases: %s", error)
            found = None
        if found is not None and found.keyphrases:
            page = render_keywords(found, language, title=title, note=note)[0]
            results.append(
                InlineQueryResultArticle(
                    f"k{key[:30]}",
                    t("inline_keywords", language),
                    InputTextMessageContent(page, parse_mode=ParseMode.HTML),
                    description=", ".join(k.phrase for k in found.keyphrases[:5]),
                )
            )
        self.computed += 1
        return results
