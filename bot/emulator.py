"""A Telegram Bot API emulator: the real HTTP surface, on loopback, strict the way Telegram is.

The unmodified python-telegram-bot ``Application`` talks to it through ``TELEGRAM_API_URL``. It
serves the end-to-end tests and the local playground (no token needed). It keeps users, chats,
messages, files and updates in memory; the "client side" methods (``send_text``,
``press_button`` …) play the part of Telegram users.

Strictness that matters for a bot's correctness: text over 4,096 characters, malformed HTML
entities, callback data over 64 bytes, unknown chats or messages, "message is not modified",
files over 20 MB on ``getFile``, ``getUpdates`` while a webhook is set. Faults (429 with
``retry_after``, 5xx) can be injected per method.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

logger = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_TOKEN = "123456789:EMULATOR-token-for-local-use-only"  # noqa: S105 - not a secret

# Parameters PTB sends as raw strings; every other form value is JSON-encoded.
_STRING_PARAMETERS = {
    "text",
    "caption",
    "parse_mode",
    "callback_query_id",
    "url",
    "secret_token",
    "language_code",
    "action",
    "file_id",
    "inline_message_id",
    "description",
    "short_description",
    "name",
    "emoji",
    "title",
    "query",
    "ip_address",
    "business_connection_id",
    "message_effect_id",
}

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*>"
)
_ATTR_RE = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+)))?")
_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_COMMAND_RE = re.compile(r"^/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?")


class BotAPIError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram's HTML subset into plain text and entities (UTF-16 offsets).

    Raises:
        BotAPIError: 400 "can't parse entities" for unsupported tags, unbalanced tags, or a
            bare ``<``, ``>`` or ``&``, as Telegram does.
    """
    out: list[str] = []
    length = 0
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, dict[str, Any]]] = []
    i = 0

    def fail(reason: str) -> BotAPIError:
        offset = len(source[:i].encode("utf-8"))
        return BotAPIError(
            400, f"Bad Request: can't parse entities: {reason} at byte offset {offset}"
        )

    while i < len(source):
        ch = source[i]
        if ch == "<":
            match = _TAG_RE.match(source, i)
            if match is None:
                raise fail(
                    "Unexpected end of name token"
                    if ">" not in source[i:]
                    else "Unsupported start tag"
                )
            closing, name, attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
            if name not in _HTML_TAGS:
                kind = "end" if closing else "start"
                raise fail(f'Unsupported {kind} tag "{name}"')
            if closing:
                if not stack or stack[-1][0] != name:
                    raise fail(f'Unmatched end tag "{name}"')
                open_name, start, attributes = stack.pop()
                if length > start:
                    entity = {
                        "type": _HTML_TAGS[open_name],
                        "offset": start,
                        "length": length - start,
                    }
                    entity.update(attributes)
                    entities.append(entity)
            else:
                extra: dict[str, Any] = {}
                parsed = {
                    m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
                    for m in _ATTR_RE.finditer(attrs)
                }
                if name == "a":
                    extra["url"] = html.unescape(parsed.get("href", ""))
                if name == "span" and parsed.get("class") != "tg-spoiler":
                    raise fail('Unsupported start tag "span"')
                if name == "pre" and stack and stack[-1][0] == "code":
                    raise fail('Unexpected start tag "pre"')
                if name == "blockquote" and "expandable" in parsed:
                    extra["type"] = "expandable_blockquote"
                stack.append((name, length, extra))
            i = match.end()
            continue
        if ch == "&":
            match = _ENTITY_RE.match(source, i)
            if match is None:
                raise fail("Character '&' is reserved and must be escaped with &amp;")
            decoded = html.unescape(match.group(0))
            out.append(decoded)
            length += _utf16_len(decoded)
            i = match.end()
            continue
        if ch == ">":
            raise fail("Character '>' is reserved and must be escaped with &gt;")
        out.append(ch)
        length += _utf16_len(ch)
        i += 1
    if stack:
        i = len(source)
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


@dataclass
class StoredFile:
    """A file the emulator holds (uploaded by a user or sent by the bot)."""

    file_id: str
    data: bytes
    path: str
    size: int


@dataclass
class Fault:
    """An injected failure for the next ``times`` calls of ``method``."""

    method: str
    status: int
    times: int = 1
    retry_after: int | None = None
    description: str = ""


@dataclass
class RecordedCall:
    """A Bot API call the bot made."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    ok: bool = True
    error: str = ""


class BotAPIEmulator:
    """An in-memory Telegram with a real HTTP Bot API server.

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
            "supports_inline_queries": False,
        }
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.calls: list[RecordedCall] = []
        self.files: dict[str, StoredFile] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.member_status: dict[tuple[int, int], str] = {}
        self.webhook: dict[str, Any] = {}
        self.faults: list[Fault] = []
        self.polling_started = asyncio.Event()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------------ server lifecycle

    def make_app(self) -> web.Application:
        """The aiohttp application serving the Bot API routes."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: an ephemeral port); return the root URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # aiohttp has no public getter for the port it bound; ask the runner's sockets.
        actual_port = port
        for address in self._runner.addresses:
            actual_port = int(address[1])
            break
        self.url = f"http://{host}:{actual_port}"
        return self.url

    async def stop(self) -> None:
        """Release waiting long polls and stop serving."""
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add_listener(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``listener(event, payload)`` on every change the bot makes (for the playground)."""
        self._listeners.append(listener)

    async def _notify(self, event: str, payload: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener(event, payload)
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ the user side

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

    async def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue an update of ``kind`` ("message", "callback_query", …) for the bot."""
        update = {"update_id": next(self._update_ids), kind: payload}
        self._updates.append(update)
        await self._notify("update", update)
        return update

    def _base_message(
        self,
        chat: dict[str, Any],
        sender: dict[str, Any],
        reply_to: dict[str, Any] | None,
        thread_id: int | None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = {
                k: v for k, v in self._public(reply_to).items() if k != "reply_to_message"
            }
        return message

    async def send_text(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        text: str,
        *,
        reply_to: dict[str, Any] | None = None,
        forward_from: dict[str, Any] | None = None,
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user writes ``text`` in ``chat``; commands get their ``bot_command`` entity."""
        message = self._base_message(chat, user, reply_to, thread_id)
        message["text"] = text
        command = _COMMAND_RE.match(text)
        if command:
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command.group(0))}
            ]
        if forward_from is not None:
            message["forward_origin"] = {
                "type": "user",
                "date": int(time.time()) - 60,
                "sender_user": forward_from,
            }
        self.messages[(chat["id"], message["message_id"])] = message
        if self.bot_sees(chat, message):
            await self.push_update("message", message)
        return message

    async def edit_text(self, chat: dict[str, Any], message_id: int, text: str) -> dict[str, Any]:
        """A user edits one of their messages."""
        message = dict(self.messages[(chat["id"], message_id)])
        message["text"] = text
        message["edit_date"] = int(time.time())
        self.messages[(chat["id"], message_id)] = message
        if self.bot_sees(chat, message):
            await self.push_update("edited_message", message)
        return message

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

    async def send_document(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        data: bytes,
        file_name: str,
        mime_type: str = "application/octet-stream",
        *,
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
        declared_size: int | None = None,
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user sends a file (optionally captioned, e.g. with ``/summary``)."""
        stored = self.store_file(data, file_name, declared_size)
        message = self._base_message(chat, user, reply_to, thread_id)
        message["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": f"U{stored.file_id}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": stored.size,
        }
        if caption:
            message["caption"] = caption
            command = _COMMAND_RE.match(caption)
            if command:
                message["caption_entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command.group(0))}
                ]
        self.messages[(chat["id"], message["message_id"])] = message
        if self.bot_sees(chat, message):
            await self.push_update("message", message)
        return message

    async def press_button(
        self, chat: dict[str, Any], user: dict[str, Any], message_id: int, data: str
    ) -> str:
        """A user presses an inline button of a bot message; returns the callback query id."""
        message = self.messages.get((chat["id"], message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat['id']}")
        buttons = [
            b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
        ]
        if not any(b.get("callback_data") == data for b in buttons):
            raise ValueError(f"message {message_id} has no button with data {data!r}")
        query_id = str(next(self._callback_ids))
        query = {
            "id": query_id,
            "from": user,
            "chat_instance": str(chat["id"]),
            "message": self._public(message),
            "data": data,
        }
        self.callback_queries[query_id] = query
        await self.push_update("callback_query", query)
        return query_id

    async def remove_bot(self, chat: dict[str, Any], by: dict[str, Any]) -> None:
        """An admin removes the bot from a group (a ``my_chat_member`` update)."""
        await self.push_update(
            "my_chat_member",
            {
                "chat": chat,
                "from": by,
                "date": int(time.time()),
                "old_chat_member": {"status": "member", "user": self.bot_user},
                "new_chat_member": {"status": "left", "user": self.bot_user},
            },
        )

    # ------------------------------------------------------------------ observing the bot

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
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``status``."""
        self.faults.append(Fault(method, status, times, retry_after, description))

    # ------------------------------------------------------------------ HTTP handling

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        content_type = request.content_type
        if content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
            return params
        if content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if getattr(part, "filename", None):
                    data = await part.read(decode=False)
                    params[part.name] = {
                        "_upload": True,
                        "filename": part.filename,
                        "data": bytes(data),
                    }
                else:
                    params[part.name] = self._decode_value(part.name, await part.text())
            return params
        form = await request.post()
        for key, value in form.items():
            params[key] = self._decode_value(key, value if isinstance(value, str) else str(value))
        return params

    @staticmethod
    def _decode_value(key: str, value: str) -> Any:
        if key in _STRING_PARAMETERS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    async def _handle_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        try:
            params = await self._read_params(request)
        except (ValueError, json.JSONDecodeError):
            return self._error(BotAPIError(400, "Bad Request: can't parse request body"))
        call = RecordedCall(method, dict(params))
        self.calls.append(call)
        try:
            self._maybe_fault(method)
            handler = getattr(self, f"_api_{method.lower()}", None)
            if handler is None:
                raise BotAPIError(404, "Not Found: method not found")
            result = await handler(params)
        except BotAPIError as error:
            call.ok = False
            call.error = error.description
            await self._notify("error", {"method": method, "description": error.description})
            return self._error(error)
        plain = {k: v for k, v in params.items() if not (isinstance(v, dict) and v.get("_upload"))}
        await self._notify("call", {"method": method, "params": plain, "result": result})
        return web.json_response({"ok": True, "result": result})

    def _maybe_fault(self, method: str) -> None:
        for fault in self.faults:
            if fault.method.lower() == method.lower() and fault.times > 0:
                fault.times -= 1
                if fault.status == 429:
                    retry = fault.retry_after or 1
                    raise BotAPIError(429, f"Too Many Requests: retry after {retry}", retry)
                raise BotAPIError(fault.status, fault.description or "Internal Server Error")

    @staticmethod
    def _error(error: BotAPIError) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": error.code,
            "description": error.description,
        }
        if error.retry_after is not None:
            body["parameters"] = {"retry_after": error.retry_after}
        return web.json_response(body, status=error.code)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            raise web.HTTPUnauthorized()
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        raise web.HTTPNotFound()

    # ------------------------------------------------------------------ validation helpers

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        try:
            chat = self.chats.get(int(chat_id))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            chat = None
        if chat is None:
            raise BotAPIError(400, "Bad Request: chat not found")
        return chat

    @staticmethod
    def _formatted(
        params: dict[str, Any], key: str, limit: int
    ) -> tuple[str, list[dict[str, Any]]]:
        raw = params.get(key)
        if raw is None or str(raw) == "":
            if key == "caption":
                return "", []
            raise BotAPIError(400, "Bad Request: message text is empty")
        raw = str(raw)
        mode = str(params.get("parse_mode") or "").lower()
        if mode == "html":
            text, entities = parse_html(raw)
        elif mode in ("", "none"):
            text, entities = (
                raw,
                list(params.get("entities") or params.get("caption_entities") or []),
            )
        else:
            raise BotAPIError(
                400, f"Bad Request: unsupported parse_mode {mode!r} in this emulator"
            )
        if key == "text" and not text.strip():
            raise BotAPIError(400, "Bad Request: message text is empty")
        if _utf16_len(text) > limit:
            raise BotAPIError(
                400,
                "Bad Request: message is too long"
                if key == "text"
                else "Bad Request: message caption is too long",
            )
        return text, entities

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        if not markup:
            return None
        if not isinstance(markup, dict):
            raise BotAPIError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if (
                    data is not None
                    and not 1 <= len(str(data).encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                ):
                    raise BotAPIError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise BotAPIError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
        return markup

    def _bot_message(self, chat: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
        }
        thread_id = params.get("message_thread_id")
        if thread_id is not None:
            message["message_thread_id"] = int(thread_id)
            message["is_topic_message"] = True
        reply = params.get("reply_parameters") or {}
        reply_id = reply.get("message_id") if isinstance(reply, dict) else None
        if reply_id is None and params.get("reply_to_message_id") is not None:
            reply_id = params["reply_to_message_id"]
        if reply_id is not None:
            original = self.messages.get((chat["id"], int(reply_id)))
            if original is None:
                if not (isinstance(reply, dict) and reply.get("allow_sending_without_reply")):
                    raise BotAPIError(400, "Bad Request: message to be replied not found")
            else:
                message["reply_to_message"] = {
                    k: v for k, v in self._public(original).items() if k != "reply_to_message"
                }
        markup = self._check_markup(params.get("reply_markup"))
        if markup:
            message["reply_markup"] = markup
        return message

    def _link_preview_disabled(self, params: dict[str, Any]) -> bool:
        options = params.get("link_preview_options")
        if isinstance(options, dict) and options.get("is_disabled"):
            return True
        return bool(params.get("disable_web_page_preview"))

    # ------------------------------------------------------------------ Bot API methods

    async def _api_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    async def _api_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise BotAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        self.polling_started.set()
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while not self._updates:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or self._runner is None:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    break
        return self._updates[:limit]

    async def _api_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        text, entities = self._formatted(params, "text", MAX_TEXT_LENGTH)
        message = self._bot_message(chat, params)
        message["text"] = text
        if entities:
            message["entities"] = entities
        message["_html"] = str(params.get("text"))
        message["_link_preview_disabled"] = self._link_preview_disabled(params)
        self.messages[(chat["id"], message["message_id"])] = message
        return self._public(message)

    async def _api_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        key = (chat["id"], int(params.get("message_id") or 0))
        message = self.messages.get(key)
        if message is None:
            raise BotAPIError(400, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise BotAPIError(400, "Bad Request: message can't be edited")
        text, entities = self._formatted(params, "text", MAX_TEXT_LENGTH)
        markup = self._check_markup(params.get("reply_markup"))
        if (
            text == message.get("text")
            and entities == message.get("entities", [])
            and (markup or None) == message.get("reply_markup")
        ):
            raise BotAPIError(
                400,
                "Bad Request: message is not modified: specified new message "
                "content and reply markup are exactly the same as a current "
                "content and reply markup of the message",
            )
        edited = dict(message)
        edited["text"] = text
        edited["entities"] = entities
        edited["edit_date"] = int(time.time())
        edited["_html"] = str(params.get("text"))
        edited["_edits"] = message.get("_edits", 0) + 1
        edited["_link_preview_disabled"] = self._link_preview_disabled(params)
        if markup:
            edited["reply_markup"] = markup
        else:
            edited.pop("reply_markup", None)
        self.messages[key] = edited
        return self._public(edited)

    async def _api_deletemessage(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        if self.messages.pop((chat["id"], int(params.get("message_id") or 0)), None) is None:
            raise BotAPIError(400, "Bad Request: message to delete not found")
        return True

    async def _api_sendchataction(self, params: dict[str, Any]) -> bool:
        self._chat(params)
        if params.get("action") not in {
            "typing",
            "upload_photo",
            "upload_document",
            "record_video",
            "upload_video",
            "record_voice",
            "upload_voice",
            "find_location",
            "choose_sticker",
        }:
            raise BotAPIError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _send_file(self, params: dict[str, Any], field_name: str) -> dict[str, Any]:
        chat = self._chat(params)
        upload = params.get(field_name)
        if isinstance(upload, dict) and upload.get("_upload"):
            stored = self.store_file(upload["data"], upload["filename"] or field_name)
            name = upload["filename"] or field_name
        elif isinstance(upload, str) and upload in self.files:
            stored = self.files[upload]
            name = stored.path.rsplit("/", 1)[-1]
        else:
            raise BotAPIError(400, f"Bad Request: there is no {field_name} in the request")
        caption, entities = self._formatted(params, "caption", MAX_CAPTION_LENGTH)
        message = self._bot_message(chat, params)
        if field_name == "photo":
            message["photo"] = [
                {
                    "file_id": stored.file_id,
                    "file_unique_id": f"U{stored.file_id}",
                    "width": 800,
                    "height": 400,
                    "file_size": stored.size,
                }
            ]
        else:
            message["document"] = {
                "file_id": stored.file_id,
                "file_unique_id": f"U{stored.file_id}",
                "file_name": name,
                "file_size": stored.size,
            }
        if caption:
            message["caption"] = caption
            if entities:
                message["caption_entities"] = entities
        self.messages[(chat["id"], message["message_id"])] = message
        return self._public(message)

    async def _api_senddocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(params, "document")

    async def _api_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(params, "photo")

    async def _api_getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise BotAPIError(400, "Bad Request: invalid file_id")
        if stored.size > MAX_DOWNLOAD_BYTES:
            raise BotAPIError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": f"U{stored.file_id}",
            "file_size": stored.size,
            "file_path": stored.path,
        }

    async def _api_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise BotAPIError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", ""))
            description = str(command.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise BotAPIError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise BotAPIError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        scope = json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True)
        self.commands[(scope, str(params.get("language_code") or ""))] = commands
        return True

    async def _api_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        scope = json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True)
        return self.commands.get((scope, str(params.get("language_code") or "")), [])

    async def _api_deletemycommands(self, params: dict[str, Any]) -> bool:
        scope = json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True)
        self.commands.pop((scope, str(params.get("language_code") or "")), None)
        return True

    async def _api_answercallbackquery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id"))
        if query_id not in self.callback_queries or query_id in self.callback_answers:
            raise BotAPIError(
                400,
                "Bad Request: query is too old and response timeout expired "
                "or query ID is invalid",
            )
        self.callback_answers[query_id] = {
            "text": params.get("text"),
            "show_alert": bool(params.get("show_alert")),
        }
        return True

    async def _api_setwebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
            raise BotAPIError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise BotAPIError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": params.get("allowed_updates"),
        }
        return True

    async def _api_deletewebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _api_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _api_getchat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = dict(self._chat(params))
        chat.setdefault("accent_color_id", 0)
        chat.setdefault("max_reaction_count", 11)
        return chat

    async def _api_getchatmember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        user_id = int(params.get("user_id") or 0)
        user = self.users.get(user_id) or (
            self.bot_user if user_id == self.bot_user["id"] else None
        )
        if user is None:
            raise BotAPIError(400, "Bad Request: user not found")
        default = "creator" if chat["type"] == "private" else "member"
        status = self.member_status.get((chat["id"], user_id), default)
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "is_anonymous": False,
                    "can_manage_chat": True,
                    "can_delete_messages": True,
                    "can_manage_video_chats": True,
                    "can_restrict_members": True,
                    "can_promote_members": False,
                    "can_change_info": True,
                    "can_invite_users": True,
                    "can_post_stories": False,
                    "can_edit_stories": False,
                    "can_delete_stories": False,
                }
            )
        elif status == "creator":
            member["is_anonymous"] = False
        return member

    async def _api_getchatadministrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self._chat(params)
        admins = []
        for (chat_id, user_id), status in self.member_status.items():
            if (
                chat_id == chat["id"]
                and status in ("administrator", "creator")
                and user_id in self.users
            ):
                admins.append(
                    await self._api_getchatmember({"chat_id": chat_id, "user_id": user_id})
                )
        return admins

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if not k.startswith("_")}
