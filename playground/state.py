"""What the emulated Telegram holds: users, chats, messages, files, recorded calls and faults."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_TOKEN = "123456789:EMULATOR-token-for-local-use-only"  # noqa: S105 - not a secret


@dataclass
class StoredFile:
    """A file the emulator holds (uploaded by a user or sent by the bot)."""

    file_id: str
    data: bytes
    path: str
    size: int


@dataclass
class Fault:
    """An injected failure for the next ``times`` calls of ``method``: an error ``status``,
    or with status 200 a malformed success whose ``result`` is the given value."""

    method: str
    status: int
    times: int = 1
    retry_after: int | None = None
    description: str = ""
    result: Any = None


@dataclass
class RecordedCall:
    """A Bot API call the bot made."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    ok: bool = True
    nonconforming: bool = False
    """Refused because it does not conform to the Bot API (``playground.conformance``)."""
    error: str = ""


class EmulatorState:
    """An in-memory Telegram: the data the Bot API routes and the simulated users share.

    Args:
        token: the only token the server accepts.
        bot_username: the bot's @username (without @).
    """

    def __init__(self, token: str = DEFAULT_TOKEN, bot_username: str = "CondensaBot") -> None:
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1,
            "is_bot": True,
            "first_name": "Condensa",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.calls: list[RecordedCall] = []
        self.files: dict[str, StoredFile] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.inline_queries: dict[str, dict[str, Any]] = {}
        self.inline_answers: dict[str, dict[str, Any]] = {}
        self.guest_queries: dict[str, dict[str, Any]] = {}
        """Guest messages (``@bot`` in a chat the bot is not in), by guest query id."""
        self.guest_answers: dict[str, dict[str, Any]] = {}
        """The bot's answer to each guest query, as Telegram posts it into the chat."""
        self.drafts: dict[tuple[int, int], list[str]] = {}
        """Every text a message draft showed, by (chat, draft id)."""
        self.member_status: dict[tuple[int, int], str] = {}
        self.webhook: dict[str, Any] = {}
        self.allowed_updates: list[str] = []
        """The update kinds the bot last asked for (empty: Telegram's default set)."""
        self.faults: list[Fault] = []
        self.strict = True
        """Refuse every call that does not conform to the Bot API (``playground.conformance``)."""
        self.polling_started = asyncio.Event()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self.last_update_id = 0
        """The id of the newest update queued for the bot."""
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def add_listener(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``listener(event, payload)`` on every change the bot makes (for the playground)."""
        self._listeners.append(listener)

    async def _notify(self, event: str, payload: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener(event, payload)
        async with self._changed:
            self._changed.notify_all()

    def add_user(
        self, user_id: int, first_name: str, language_code: str = "en", username: str | None = None
    ) -> dict[str, Any]:
        """Register a human user."""
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }
        if username:
            user["username"] = username
        self.users[user_id] = user
        return user

    def private_chat(self, user: dict[str, Any]) -> dict[str, Any]:
        """The private chat between ``user`` and the bot."""
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        self.chats[chat["id"]] = chat
        return chat

    def group_chat(
        self,
        chat_id: int,
        title: str,
        supergroup: bool = True,
        is_forum: bool = False,
        username: str | None = None,
    ) -> dict[str, Any]:
        """A group (or supergroup, optionally a forum) the bot is a member of."""
        chat: dict[str, Any] = {
            "id": chat_id,
            "type": "supergroup" if supergroup else "group",
            "title": title,
        }
        if is_forum:
            chat["is_forum"] = True
        if username:
            chat["username"] = username
        self.chats[chat_id] = chat
        return chat

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """Make a user "administrator", "creator", "member", "left" … of a chat."""
        self.member_status[(chat_id, user_id)] = status

    def bot_sees(self, chat: dict[str, Any], message: dict[str, Any]) -> bool:
        """Telegram's privacy mode: in groups, a bot that is not an admin (and has privacy
        mode on) only receives commands, replies to its messages and mentions of it."""
        if chat["type"] not in ("group", "supergroup"):
            return True
        if self.member_status.get((chat["id"], self.bot_user["id"])) in ("left", "kicked"):
            return False
        if self.bot_user["can_read_all_group_messages"]:
            return True
        if self.member_status.get((chat["id"], self.bot_user["id"])) in (
            "administrator",
            "creator",
        ):
            return True
        text = message.get("text") or message.get("caption") or ""
        if text.startswith("/"):
            return True
        reply = message.get("reply_to_message") or {}
        if reply.get("from", {}).get("id") == self.bot_user["id"]:
            return True
        return f"@{self.bot_user['username']}".lower() in text.lower()

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def store_file(self, data: bytes, name: str, declared_size: int | None = None) -> StoredFile:
        """Keep a file; ``declared_size`` fakes a huge file without holding its bytes."""
        number = next(self._file_ids)
        stored = StoredFile(
            f"FILE{number:06d}",
            data,
            f"documents/file_{number}_{name}",
            declared_size if declared_size is not None else len(data),
        )
        self.files[stored.file_id] = stored
        return stored

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Messages the bot sent in a chat, current state, oldest first."""
        return [
            m
            for (cid, _), m in sorted(self.messages.items())
            if cid == chat_id and m.get("from", {}).get("id") == self.bot_user["id"]
        ]

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Successful calls of ``method``, oldest first."""
        return [c for c in self.calls if c.method == method and c.ok]

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy and return its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise TimeoutError("condition not met in time")
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    continue

    def inject_fault(
        self,
        method: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str = "",
        result: Any = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``status`` (with 200: answer
        ``ok`` with ``result`` instead of the method's, a malformed success)."""
        self.faults.append(Fault(method, status, times, retry_after, description, result))

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if not k.startswith("_")}
