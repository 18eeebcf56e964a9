"""Voice notes, audio files and video notes: a transcript with its length, then a summary.

The recording is downloaded, decoded in the sandbox and transcribed by the speech service
(``HandlerDeps.speech``) while the placeholder shows the length and, for long notes, how far the
transcription has got. The reply starts with "🎙 1:42 · 260 words" and the transcript in
expandable quotes (a .txt attachment when long), then the summary or key phrases of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, InputFile, Message

from handlers.deps import HandlerDeps
from handlers.errors import error_sentence
from handlers.i18n import t
from handlers.inputs import InputText, VoiceMedia, download
from handlers.progress import WorkInProgress
from handlers.render import TRANSCRIPT_INLINE_CHARS, duration_label, pack_blocks, render_transcript
from services.core.errors import CondensaError, InputTooShort
from services.core.types import Transcript

logger = logging.getLogger(__name__)

PROGRESS_EDIT_SECONDS = 3.0
"""How often the placeholder of a long note shows the transcription's progress."""
LONG_NOTE_SECONDS = 30.0
"""Notes at least this long show a running percentage."""


class _Progress:
    """The latest (length, fraction) the speech service reported, shown every few seconds."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fraction = 0.0

    def update(self, seconds: float, fraction: float) -> None:
        self.seconds = seconds
        self.fraction = fraction

    async def show_while_working(self, shown: WorkInProgress, language: str) -> None:
        last = -1
        while True:
            await asyncio.sleep(PROGRESS_EDIT_SECONDS)
            if self.seconds is None or self.seconds < LONG_NOTE_SECONDS:
                continue
            percent = int(100 * self.fraction)
            if percent != last:
                last = percent
                text = t(
                    "voice_progress",
                    language,
                    duration=duration_label(self.seconds),
                    percent=percent,
                )
                with contextlib.suppress(Exception):  # cosmetic: never fail the work for it
                    await shown.show(text)


async def transcribe_quietly(
    deps: HandlerDeps, bot: Bot, media: VoiceMedia, why: str
) -> Transcript | None:
    """The transcript of a recording nobody is waiting on (kept for a digest, joining a
    batch); None, and a log line saying ``why`` it mattered, when it cannot be had."""
    if deps.speech is None:
        return None
    try:
        data = await download(bot, media.file_id, media.size, deps.limits.max_file_bytes)
        return await deps.speech.transcribe(data)
    except CondensaError as error:
        logger.info("%s: %s", why, error)
        return None


async def answer_recording(
    deps: HandlerDeps,
    message: Message,
    bot: Bot,
    media: VoiceMedia,
    language: str,
    then: Callable[[InputText], Awaitable[list[str]]] | None,
) -> None:
    """Transcribe ``media`` and reply with the transcript and ``then``'s pages about it (the
    summary, the key phrases); a short transcript stands alone."""
    if deps.speech is None:
        await message.reply_text(t("voice_unavailable", language), do_quote=True)
        return
    try:
        data = await download(bot, media.file_id, media.size, deps.limits.max_file_bytes)
    except CondensaError as error:
        await message.reply_html(error_sentence(error, language), do_quote=True)
        return
    progress = _Progress(media.seconds)
    placeholder = (
        t("voice_working", language, duration=duration_label(media.seconds))
        if media.seconds
        else t("working", language)
    )
    async with WorkInProgress(message, placeholder) as shown:
        ticker = asyncio.create_task(progress.show_while_working(shown, language))
        try:
            transcript = await deps.speech.transcribe(data, None, progress.update)
        except CondensaError as error:
            await shown.deliver([error_sentence(error, language)])
            return
        finally:
            ticker.cancel()
        pages = await transcript_reply(transcript, language, then)
        await shown.deliver(pages)
    if len(transcript.text) > TRANSCRIPT_INLINE_CHARS:
        attachment = InputFile(transcript.text.encode(), filename="transcript.txt")
        await message.reply_document(attachment, do_quote=True)


async def transcript_reply(
    transcript: Transcript,
    language: str,
    then: Callable[[InputText], Awaitable[list[str]]] | None,
) -> list[str]:
    """The pages of a reply about a recording: its transcript, then ``then``'s pages."""
    blocks = render_transcript(transcript, language)
    if then is None:
        return pack_blocks(blocks)
    source = InputText(transcript.text, "voice")
    try:
        about = await then(source)
    except InputTooShort:
        return pack_blocks(blocks)  # a short note: its transcript is the answer
    except CondensaError as error:
        about = [error_sentence(error, language)]
    return pack_blocks([*blocks, *about])
