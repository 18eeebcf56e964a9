"""Domain errors to sentences, and the one global error handler."""

from __future__ import annotations

import logging

from babel import Locale, UnknownLocaleError
from telegram import Update

from handlers.chat_context import CondensaContext
from handlers.i18n import message_ids, pick_language, t, tn
from handlers.render import escape
from services.core.errors import (
    Busy,
    CondensaError,
    DocumentUnreadable,
    EmptyInput,
    FetchBlocked,
    InputTooLarge,
    InputTooShort,
    ModelServerError,
    ModelUnavailable,
    SpeechUnsupported,
    UnknownMethod,
    UnsupportedFormat,
)

logger = logging.getLogger(__name__)
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def spoken_name(error: SpeechUnsupported, language: str) -> str:
    """The name of the language that was heard, in the reader's language ("ruso")."""
    try:
        return str(Locale.parse(language).languages.get(error.language, error.language))
    except (ValueError, UnknownLocaleError):
        return error.language


def error_sentence(error: CondensaError, language: str) -> str:
    """One clear, localized, HTML-safe sentence for a domain error."""
    if isinstance(error, Busy):
        return escape(t("err_busy", language))
    if isinstance(error, InputTooShort):
        return escape(
            tn(
                "err_too_short",
                error.sentences,
                language,
                sentences=error.sentences,
                minimum=error.minimum,
            )
        )
    if isinstance(error, InputTooLarge):
        if error.unit == "bytes" and error.limit >= TELEGRAM_DOWNLOAD_LIMIT:
            return escape(t("err_file_too_big", language, size=_megabytes(error.size)))
        unit = t(f"unit_{error.unit}", language)
        return escape(
            t(
                "err_too_large",
                language,
                size=f"{error.size:,}",
                unit=unit,
                limit=f"{error.limit:,}",
            )
        )
    if isinstance(error, DocumentUnreadable):
        return (
            escape(t(f"err_{error.reason}", language))
            if f"err_{error.reason}" in message_ids(language)
            else escape(t("err_damaged", language))
        )
    if isinstance(error, UnsupportedFormat):
        return escape(t("err_unsupported", language, kind=error.kind))
    if isinstance(error, SpeechUnsupported):
        return escape(t("err_speech_unsupported", language, spoken=spoken_name(error, language)))
    if isinstance(error, ModelUnavailable):
        return escape(t("err_model_unavailable", language, reason=error.reason))
    if isinstance(error, UnknownMethod):
        return escape(t("err_unknown_method", language, name=error.name))
    if isinstance(error, FetchBlocked):
        return escape(t("err_fetch", language, reason=str(error)))
    if isinstance(error, EmptyInput):
        return escape(t("err_empty", language))
    if isinstance(error, ModelServerError):
        key = f"err_server_{error.kind}"
        if key not in message_ids(language):
            key = "err_server_bad_response"
        wait = t("retry_in", language, seconds=error.retry_after) if error.retry_after else ""
        return escape(t(key, language, wait=wait).strip())
    return escape(t("err_generic", language))


async def on_error(update: object, context: CondensaContext) -> None:
    """Log any unhandled exception and tell the user, without a traceback, that it failed."""
    logger.error("unhandled error while processing an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    user = update.effective_user
    language = pick_language(None, user.language_code if user else None)
    try:
        await context.bot.send_message(update.effective_chat.id, t("err_generic", language))
    except Exception:  # noqa: BLE001 - the error handler itself must never raise
        logger.warning("could not tell the user about an error", exc_info=True)
