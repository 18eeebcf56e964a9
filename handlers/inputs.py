"""Finding the text a command works on: its arguments, the replied-to message, or a file."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot, Document, Message

from services.core.errors import InputTooLarge
from services.core.protocols import DocumentReader, LinkReader
from services.core.types import DocumentText


@dataclass(frozen=True)
class InputText:
    """Text to work on and where it came from."""

    text: str
    source: str  # "args", "reply", "document", "message"
    name: str = ""
    document: DocumentText | None = None


def command_arguments(message: Message) -> str:
    """The text after the leading ``/command`` of a message, newlines kept."""
    body = message.text or message.caption or ""
    parts = body.split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


def message_text(message: Message) -> str:
    """A message's text or caption."""
    return message.text or message.caption or ""


async def read_document(
    bot: Bot, document: Document, max_bytes: int, reader: DocumentReader
) -> InputText:
    """Download a document and read its text (in the reader's sandbox).

    Raises:
        InputTooLarge: the file is over ``max_bytes`` (Telegram's bot download limit).
        UnsupportedFormat: a format the reader refuses.
        DocumentUnreadable: encrypted, scanned, damaged, or over the parsing budget.
    """
    name = document.file_name or "document"
    if document.file_size and document.file_size > max_bytes:
        raise InputTooLarge(document.file_size, max_bytes, unit="bytes")
    file = await bot.get_file(document.file_id)
    data = bytes(await file.download_as_bytearray())
    read = await reader.read(data, name)
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
) -> InputText | None:
    """The input of /summary or /keywords, in order: arguments (a link is fetched), a document
    the command is the caption of, the replied-to document or text. None when there is
    nothing."""
    arguments = command_arguments(message)
    if arguments:
        return await read_link_or_text(arguments, "args", links)
    if message.document is not None:
        return await read_document(bot, message.document, max_file_bytes, reader)
    replied = message.reply_to_message
    if replied is not None:
        if replied.document is not None:
            return await read_document(bot, replied.document, max_file_bytes, reader)
        text = message_text(replied)
        if text.strip():
            return await read_link_or_text(text, "reply", links)
    return None
