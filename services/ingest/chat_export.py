"""Telegram Desktop chat exports (``result.json``, alone or zipped) as stored chat messages."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from typing import Any

from services.core.errors import DocumentUnreadable, InputTooLarge, NotAnExport
from services.core.types import ChatExport, ChatMessage
from services.ingest.documents import ReaderLimits, run_sandboxed

MAX_JSON_BYTES = 200 * 1024 * 1024


_SUPERGROUP_TYPES = {
    "private_supergroup",
    "public_supergroup",
    "private_channel",
    "public_channel",
}


def bot_api_chat_id(export_id: object, export_type: str) -> int | None:
    """The Bot API id of an exported chat: supergroups are ``-100<id>``, groups ``-<id>``."""
    if not isinstance(export_id, int) or export_id <= 0:
        return None
    if export_type in _SUPERGROUP_TYPES:
        return int(f"-100{export_id}")
    if export_type == "private_group":
        return -export_id
    return None


def flatten_text(text: object) -> str:
    """An export's ``text`` field (a string, or a list of strings and entity objects)."""
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        return "".join(
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in text
            if isinstance(part, str | dict)
        )
    return ""


def _json_bytes(data: bytes, max_bytes: int) -> bytes:
    if not data.startswith(b"PK\x03\x04"):
        return data
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            members = [
                info
                for info in archive.infolist()
                if info.filename.rsplit("/", 1)[-1] == "result.json" and not info.is_dir()
            ]
            if not members:
                raise NotAnExport("no result.json in the zip")
            member = min(members, key=lambda info: info.filename.count("/"))
            with archive.open(member) as stream:
                content = stream.read(max_bytes + 1)  # bounded whatever the header claims
    except (zipfile.BadZipFile, RuntimeError, OSError, EOFError) as exc:
        raise NotAnExport(f"broken zip: {exc}") from exc
    if len(content) > max_bytes:
        raise InputTooLarge(len(content), max_bytes, unit="bytes")
    return content


def parse_export(data: bytes, max_bytes: int = MAX_JSON_BYTES) -> ChatExport:
    """Read a chat export; raises :class:`NotAnExport` or ``InputTooLarge``."""
    raw = _json_bytes(data, max_bytes)
    try:
        document: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAnExport(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise NotAnExport("no messages list")
    chat_id = bot_api_chat_id(document.get("id"), str(document.get("type", "")))
    messages: list[ChatMessage] = []
    for item in document["messages"]:
        message = _message(item, chat_id or 0)
        if message is not None:
            messages.append(message)
    return ChatExport(chat_id, str(document.get("name") or ""), messages)


def _message(item: object, chat_id: int) -> ChatMessage | None:
    if not isinstance(item, dict) or item.get("type") != "message":
        return None
    text = flatten_text(item.get("text")).strip()
    message_id = item.get("id")
    if not text or not isinstance(message_id, int):
        return None
    try:
        date = int(item.get("date_unixtime", 0))
    except (TypeError, ValueError):
        date = 0
    if date <= 0:
        return None
    from_id = str(item.get("from_id") or "")
    user_id = int(from_id[4:]) if from_id.startswith("user") and from_id[4:].isdigit() else 0
    replied = item.get("reply_to_message_id")
    return ChatMessage(
        chat_id,
        message_id,
        user_id,
        str(item.get("from") or ""),
        date,
        text,
        reply_to=replied if isinstance(replied, int) else 0,
    )


class ChatExportReader:
    """The ``ExportReader``: parses an export in the sandboxed child process (the bot process
    never inflates the zip nor parses the JSON), within ``max_bytes`` and the child's memory
    and time caps."""

    def __init__(
        self, max_bytes: int = MAX_JSON_BYTES, limits: ReaderLimits | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.limits = limits or ReaderLimits()

    async def read_export(self, data: bytes) -> ChatExport:
        """The exported chat; raises ``NotAnExport``, ``InputTooLarge`` or
        ``DocumentUnreadable`` (over the child's budget)."""
        if not data.startswith(b"PK\x03\x04") and not data[:64].lstrip().startswith(b"{"):
            raise NotAnExport("neither JSON nor a zip")
        result = await run_sandboxed(
            {"kind": "export", "max_bytes": self.max_bytes}, data, self.limits
        )
        if result.get("error") == "not_export":
            raise NotAnExport(str(result.get("detail", "")))
        if result.get("error") == "too_large":
            raise InputTooLarge(int(result.get("detail") or 0), self.max_bytes, unit="bytes")
        found = result.get("export")
        if not isinstance(found, dict):
            raise DocumentUnreadable("too_complex", "over the memory budget or crashed")
        messages = [ChatMessage(**m) for m in found.get("messages", [])]
        return ChatExport(found.get("chat_id"), str(found.get("title", "")), messages)
