"""Finding the text a command works on: its arguments, the replied-to message, or a file."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot, Document, Message, PhotoSize

from services.core.errors import InputTooLarge
from services.core.protocols import DocumentReader, LinkReader
from services.core.types import DocumentText


@dataclass(frozen=True)
class InputText:
    """Text to work on and where it came from."""

    text: str
    source: str  # "args", "reply", "document", "photo", "message", "voice"
    name: str = ""
    document: DocumentText | None = None


PHOTO_NAME = "📷"
"""How a photo is named in the heading of its reply ("📷 · OCR · 1 page · 120 words")."""


@dataclass(frozen=True)
class VoiceMedia:
    """A voice note, audio file or video note to transcribe."""

    file_id: str
    size: int | None
    seconds: float | None
    """The length Telegram reports (None for a document)."""


def voice_in(message: Message | None) -> VoiceMedia | None:
    """The recording a message carries: a voice or video note, an audio file, or a document
    whose type is audio or video."""
    if message is None:
        return None
    for media in (message.voice, message.audio, message.video_note, message.video):
        if media is not None:
            # Read from the wire form: the attribute warns while PTB moves it to timedelta.
            seconds = float(media.to_dict().get("duration") or 0)
            return VoiceMedia(media.file_id, media.file_size, seconds or None)
    document = message.document
    if document is not None and (document.mime_type or "").startswith(("audio/", "video/")):
        return VoiceMedia(document.file_id, document.file_size, None)
    return None


SPOKEN_CHARS_PER_SECOND = 15
"""About 150 words a minute: what a recording weighs against a quota of characters."""
PAGE_CHARS = 2000
"""What one photo weighs against a quota of characters (a page of text)."""


def attachment_weight(message: Message) -> int | None:
    """What the file a message carries counts as, in characters, against a quota: a
    document its size, a recording its length in speech, a photo one page; None when it
    carries none."""
    recording = voice_in(message)
    if recording is not None and recording.seconds:
        return round(recording.seconds * SPOKEN_CHARS_PER_SECOND)
    if message.document is not None:
        return message.document.file_size or 0
    if message.photo:
        return PAGE_CHARS
    return (recording.size or 0) if recording is not None else None


async def download(bot: Bot, file_id: str, size: int | None, max_bytes: int) -> bytes:
    """A file's bytes, refused above ``max_bytes`` before downloading when its size is known.

    Raises:
        InputTooLarge: over ``max_bytes``.
    """
    if size and size > max_bytes:
        raise InputTooLarge(size, max_bytes, unit="bytes")
    file = await bot.get_file(file_id)
    return bytes(await file.download_as_bytearray())


def largest_photo(sizes: tuple[PhotoSize, ...], max_bytes: int) -> PhotoSize:
    """The largest rendition of a photo that may be downloaded (the best for OCR)."""
    fitting = [p for p in sizes if not p.file_size or p.file_size <= max_bytes] or list(sizes)
    return max(fitting, key=lambda p: p.width * p.height)


async def read_photo(
    bot: Bot, message: Message, max_bytes: int, reader: DocumentReader, language: str | None
) -> InputText:
    """Read the text of a photo by OCR (in the reader's sandbox).

    Raises:
        DocumentUnreadable: no text, damaged, too large, or over the budget.
    """
    photo = largest_photo(message.photo, max_bytes)
    data = await download(bot, photo.file_id, photo.file_size, max_bytes)
    read = await reader.read(data, "photo.jpg", language)
    return InputText(read.text, "photo", PHOTO_NAME, read)


def command_arguments(message: Message) -> str:
    """The text after the leading ``/command`` of a message, newlines kept."""
    body = message.text or message.caption or ""
    parts = body.split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


def message_text(message: Message) -> str:
    """A message's text or caption."""
    return message.text or message.caption or ""


async def read_document(
    bot: Bot,
    document: Document,
    max_bytes: int,
    reader: DocumentReader,
    language: str | None = None,
) -> InputText:
    """Download a document and read its text (in the reader's sandbox).

    Raises:
        InputTooLarge: the file is over ``max_bytes`` (Telegram's bot download limit).
        UnsupportedFormat: a format the reader refuses.
        DocumentUnreadable: encrypted, scanned, damaged, or over the parsing budget.
    """
    name = document.file_name or "document"
    data = await download(bot, document.file_id, document.file_size, max_bytes)
    read = await reader.read(data, name, language)
    return InputText(read.text, "document", name, read)


async def read_link_or_text(text: str, source: str, links: LinkReader) -> InputText:
    """A message that is (mostly) a link becomes the linked page; any other text stays."""
    url = links.find_link(text)
    if url is None:
        return InputText(text, source)
    name, document = await links.read_link(url)
    return InputText(document.text, "link", name, document)


async def resolve_input(
    message: Message,
    bot: Bot,
    max_file_bytes: int,
    reader: DocumentReader,
    links: LinkReader,
    language: str | None = None,
    arguments: str | None = None,
) -> InputText | None:
    """The input of /summary or /keywords, in order: arguments (a link is fetched), a document
    or photo the command is the caption of, the replied-to document, photo or text. None when
    there is nothing. (Recordings are transcribed apart: :func:`voice_in`.) ``arguments``
    replaces the text after the command when the caller has parsed it already."""
    if arguments is None:
        arguments = command_arguments(message)
    if arguments:
        return await read_link_or_text(arguments, "args", links)
    if message.document is not None:
        return await read_document(bot, message.document, max_file_bytes, reader, language)
    if message.photo:
        return await read_photo(bot, message, max_file_bytes, reader, language)
    replied = message.reply_to_message
    if replied is not None:
        if replied.document is not None:
            return await read_document(bot, replied.document, max_file_bytes, reader, language)
        if replied.photo:
            return await read_photo(bot, replied, max_file_bytes, reader, language)
        text = message_text(replied)
        if text.strip():
            return await read_link_or_text(text, "reply", links)
    return None
