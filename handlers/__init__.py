"""The Telegram surface: one module per capability, wired in one place here.

Handlers parse the update, call one service through its protocol, and render the answer. They
never import model libraries; ``tests/test_architecture.py`` enforces it.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    MessageReactionHandler,
    TypeHandler,
    filters,
)

from handlers.access import AccessGate, AnswerTimer, OperatorHandlers
from handlers.ask import AskHandlers
from handlers.catchup import START_PREFIX, CatchUpHandlers
from handlers.chat_context import ChatSettingsLoader, context_types
from handlers.deps import AccessPolicy, HandlerDeps, Limits, Quotas
from handlers.digest import DigestHandlers
from handlers.errors import on_error
from handlers.generate import GenerateHandlers
from handlers.guest import GuestHandlers
from handlers.inline import InlineHandlers
from handlers.settings_menu import CALLBACK_PREFIX, SettingsHandlers
from handlers.start import StartHandlers, command_menus
from handlers.summary import SummaryHandlers

__all__ = [
    "AccessPolicy",
    "HandlerDeps",
    "Limits",
    "Quotas",
    "command_menus",
    "context_types",
    "register_handlers",
]


RECORDINGS = filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE | filters.VIDEO
"""What is transcribed: voice and video notes, audio files, videos."""
NEW = filters.UpdateType.MESSAGE
"""What an edit means: an edited command or private text starts no new work (the answer to
the original stands); an edited group message still updates the kept text (``record``)."""


def register_handlers(
    application: Application,  # type: ignore[type-arg]
    deps: HandlerDeps,
) -> tuple[SummaryHandlers, DigestHandlers | None, GenerateHandlers]:
    """Add every handler to ``application``; returns the summary handlers (for shutdown), the
    digest handlers (to restore schedules) when digests are available, and the generation
    handlers (stopped on shutdown)."""
    start = StartHandlers(deps)
    summary = SummaryHandlers(deps)
    settings = SettingsHandlers(deps)
    generate = GenerateHandlers(deps)
    private = filters.ChatType.PRIVATE
    # Guest mode first: a guest message is answered and ends there (nothing else sees it).
    application.add_handler(TypeHandler(Update, GuestHandlers(deps).route), group=-3)
    application.add_handler(TypeHandler(Update, ChatSettingsLoader(deps.store)), group=-2)
    if deps.ledger is not None:
        gate = AccessGate(deps.access, deps.ledger, deps.limits.auto_summary_min_chars, deps.clock)
        application.add_handler(TypeHandler(Update, gate), group=-1)
        timer = AnswerTimer(deps.ledger, deps.clock)
        application.add_handler(TypeHandler(Update, timer), group=99)
        operator = OperatorHandlers(deps.access, deps.ledger, deps.clock)
        for name, callback in (
            ("stats", operator.stats),
            ("allow", operator.allow),
            ("deny", operator.deny),
            ("quota", operator.quota),
        ):
            application.add_handler(CommandHandler(name, callback, filters=NEW))
    if deps.archive is not None and deps.digests is not None:
        catchup = CatchUpHandlers(deps, deps.archive, deps.digests)
        application.add_handler(
            CommandHandler(
                "start",
                catchup.start_link,
                filters=NEW & private & filters.Regex(rf"^/start {START_PREFIX}-?\d+$"),
            )
        )
        for name in ("catchup", "ponerme_al_dia"):
            application.add_handler(CommandHandler(name, catchup.catchup, filters=NEW))
        # Its own handler group: noticing a member is back never stops other handlers.
        application.add_handler(
            MessageHandler(
                filters.ChatType.GROUPS & NEW & ~filters.COMMAND, catchup.on_member_message
            ),
            group=2,
        )
    application.add_handler(CommandHandler("start", start.start, filters=NEW))
    application.add_handler(CommandHandler("help", start.help, filters=NEW))
    application.add_handler(CommandHandler("summary", summary.summary_command, filters=NEW))
    application.add_handler(CommandHandler("keywords", summary.keywords_command, filters=NEW))
    application.add_handler(CommandHandler("settings", settings.show, filters=NEW))
    application.add_handler(CommandHandler("generate", generate.generate, filters=NEW))
    application.add_handler(CommandHandler("ask", AskHandlers(deps, generate).ask, filters=NEW))
    application.add_handler(CommandHandler("cancel", generate.cancel, filters=NEW))
    application.add_handler(
        CallbackQueryHandler(settings.on_button, pattern=f"^{CALLBACK_PREFIX}:")
    )
    application.add_handler(InlineQueryHandler(InlineHandlers(deps).answer))
    digest = _register_digests(application, deps)
    application.add_handler(
        MessageHandler(
            NEW
            & (filters.Document.ALL | filters.PHOTO | RECORDINGS)
            & filters.CaptionRegex(r"^/(summary|keywords)\b"),
            summary.caption_command,
        )
    )
    application.add_handler(
        MessageHandler(NEW & private & filters.Document.ALL, summary.private_document)
    )
    application.add_handler(MessageHandler(NEW & private & RECORDINGS, summary.private_recording))
    application.add_handler(MessageHandler(NEW & private & filters.PHOTO, summary.private_photo))
    application.add_handler(
        MessageHandler(
            NEW & private & (filters.TEXT | filters.CAPTION) & ~filters.COMMAND,
            summary.private_text,
        )
    )
    application.add_error_handler(on_error)
    return summary, digest, generate


def _register_digests(
    application: Application,  # type: ignore[type-arg]
    deps: HandlerDeps,
) -> DigestHandlers | None:
    if deps.archive is None or deps.digests is None or deps.exports is None:
        return None
    digest = DigestHandlers(deps, deps.archive, deps.digests, deps.exports)
    for name, callback in (
        ("digest", digest.digest),
        ("digest_on", digest.digest_on),
        ("digest_off", digest.digest_off),
        ("schedule", digest.schedule),
        ("optout", digest.opt_out),
        ("optin", digest.opt_in),
        ("forget", digest.forget),
    ):
        application.add_handler(CommandHandler(name, callback, filters=NEW))
    application.add_handler(
        MessageHandler(
            NEW & filters.Document.ALL & filters.CaptionRegex(r"^/import(@\w+)?(\s|$)"),
            digest.import_export,
        )
    )
    application.add_handler(ChatMemberHandler(digest.membership, ChatMemberHandler.MY_CHAT_MEMBER))
    # A separate handler group: keeping a message never stops other handlers from seeing it.
    application.add_handler(
        MessageHandler(
            filters.ChatType.GROUPS
            & (filters.TEXT | filters.CAPTION)
            & ~filters.COMMAND
            & (filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE),
            digest.record,
        ),
        group=1,
    )
    application.add_handler(
        MessageHandler(filters.ChatType.GROUPS & NEW & RECORDINGS, digest.record_recording),
        group=1,
    )
    application.add_handler(MessageReactionHandler(digest.reaction), group=1)
    application.add_handler(
        MessageHandler(
            filters.ChatType.GROUPS & filters.StatusUpdate.PINNED_MESSAGE, digest.pinned
        ),
        group=1,
    )
    return digest
