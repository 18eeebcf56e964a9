"""The local playground: the real bot against the built-in Bot API emulator, in a browser.

With no ``TELEGRAM_BOT_TOKEN``, ``python -m bot`` starts the emulator, the unmodified
Application polling it, and this small aiohttp site (127.0.0.1:8080 by default) with a private
chat and a group chat whose members you can speak as. The page is plain HTML/CSS/JS; updates
arrive over a WebSocket; bot messages are rendered from Telegram's entities with DOM nodes,
never by injecting HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from io import BytesIO
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from playground.api import BotAPIEmulator

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
GROUP_ID = -1001234567890
ELSEWHERE_ID = -1001234567891
"""A group Condensa is not in: what guest mode (``@bot`` as a reply) is for."""
INLINE_WAIT_SECONDS = 15.0
MAX_UPLOAD_BYTES = 25 * 1024 * 1024


def _picture_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a picture, as Telegram's servers would measure them (None when it
    is not a picture Pillow knows: it is then sent as a file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


class Playground:
    """Serves the chat page for one emulator.

    Args:
        emulator: the running Bot API emulator the bot talks to.
        language: UI language of the private-chat user ("en" or "es").
    """

    def __init__(self, emulator: BotAPIEmulator, language: str = "en") -> None:
        self.emulator = emulator
        self._sockets: set[web.WebSocketResponse] = set()
        self.me = emulator.add_user(1000, "You", language_code=language)
        self.private = emulator.private_chat(self.me)
        self.members = [
            emulator.add_user(1001, "Ana", "es", "ana"),
            emulator.add_user(1002, "Bob", "en", "bob"),
            emulator.add_user(1003, "Carla", "en", "carla"),
        ]
        self.group = emulator.group_chat(GROUP_ID, "Book club", supergroup=True)
        emulator.set_member_status(GROUP_ID, 1001, "creator")
        emulator.set_member_status(GROUP_ID, 1002, "administrator")
        # The bot is an admin of the group, so privacy mode lets it read every message.
        emulator.set_member_status(GROUP_ID, emulator.bot_user["id"], "administrator")
        self.elsewhere = emulator.group_chat(ELSEWHERE_ID, "Neighbours (no bot)", supergroup=True)
        for member in self.members:
            emulator.set_member_status(ELSEWHERE_ID, member["id"], "member")
        emulator.set_member_status(ELSEWHERE_ID, emulator.bot_user["id"], "left")
        emulator.add_listener(self._on_event)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------------ events to the page

    def _on_event(self, event: str, payload: dict[str, Any]) -> None:
        outgoing: dict[str, Any] | None = None
        if event == "update" and "message" in payload:
            outgoing = {"type": "message", "message": self._public(payload["message"])}
        elif event == "update" and "guest_message" in payload:
            outgoing = {"type": "message", "message": self._public(payload["guest_message"])}
        elif event == "chat_message":  # seen by the chat's people, not sent to the bot
            outgoing = {"type": "message", "message": self._public(payload)}
        elif event == "update" and "edited_message" in payload:
            outgoing = {"type": "message", "message": self._public(payload["edited_message"])}
        elif event == "call":
            method, result = payload.get("method"), payload.get("result")
            params = payload.get("params") or {}
            if isinstance(result, dict) and "message_id" in result:
                outgoing = {"type": "message", "message": result}
            elif method == "sendMessageDraft" and result is True:
                chat_id = int(params.get("chat_id", 0))
                shown = self.emulator.drafts.get((chat_id, int(params.get("draft_id", 0))))
                outgoing = {"type": "draft", "chat_id": chat_id, "text": (shown or [""])[-1]}
            elif method == "sendChatAction":
                outgoing = {"type": "typing", "chat_id": int(params.get("chat_id", 0))}
            elif method == "answerCallbackQuery" and params.get("text"):
                outgoing = {"type": "toast", "text": str(params["text"])}
        if outgoing is not None:
            text = json.dumps(outgoing)
            for socket in list(self._sockets):
                asyncio.ensure_future(self._send(socket, text))

    @staticmethod
    async def _send(socket: web.WebSocketResponse, text: str) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await socket.send_str(text)

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if not k.startswith("_")}

    # ------------------------------------------------------------------ HTTP API

    def make_app(self) -> web.Application:
        """The page, its static files and the JSON/WebSocket API."""
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/send", self._send_text)
        app.router.add_post("/api/upload", self._upload)
        app.router.add_post("/api/press", self._press)
        app.router.add_post("/api/inline", self._inline)
        app.router.add_post("/api/inline/choose", self._inline_choose)
        app.router.add_get("/api/file/{file_id}", self._file)
        app.router.add_get("/ws", self._websocket)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 8080) -> str:
        """Serve the page; returns its URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = next(iter(self._runner.addresses), (host, port))
        self.url = f"http://{host}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        """Close sockets and stop serving."""
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _state(self, request: web.Request) -> web.Response:
        chats = [self.private, self.group, self.elsewhere]
        messages = {
            str(chat["id"]): [
                self._public(m)
                for (cid, _), m in sorted(self.emulator.messages.items())
                if cid == chat["id"]
            ]
            for chat in chats
        }
        samples = json.loads((STATIC / "samples.json").read_text(encoding="utf-8"))
        return web.json_response(
            {
                "bot": self.emulator.bot_user,
                "me": self.me,
                "members": self.members,
                "chats": chats,
                "elsewhere": ELSEWHERE_ID,
                "messages": messages,
                "samples": samples,
            }
        )

    def _chat_and_user(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        chat = self.emulator.chats.get(int(data.get("chat_id", 0)))
        user = self.emulator.users.get(int(data.get("user_id", 0)))
        if chat is None or user is None:
            raise web.HTTPBadRequest(text="unknown chat or user")
        if chat["type"] == "private" and user["id"] != chat["id"]:
            raise web.HTTPBadRequest(text="only the chat's user writes in a private chat")
        return chat, user

    def _reply_target(self, chat: dict[str, Any], data: dict[str, Any]) -> dict[str, Any] | None:
        reply_id = data.get("reply_to")
        if not reply_id:
            return None
        return self.emulator.messages.get((chat["id"], int(reply_id)))

    async def _send_text(self, request: web.Request) -> web.Response:
        data = await request.json()
        chat, user = self._chat_and_user(data)
        text = str(data.get("text", ""))
        if not text.strip():
            raise web.HTTPBadRequest(text="empty message")
        forward = None
        if data.get("forwarded"):
            forward = {
                "id": 999,
                "is_bot": False,
                "first_name": str(data.get("forward_from") or "A news site"),
            }
        reply_to = self._reply_target(chat, data)
        mention = f"@{self.emulator.bot_user['username']}".lower()
        if chat["id"] == ELSEWHERE_ID and text.lower().startswith(mention):
            # Guest mode: the bot is summoned into a chat it is not in.
            query_id = await self.emulator.send_guest_message(chat, user, text, reply_to=reply_to)
            return web.json_response(self._public(self.emulator.guest_queries[query_id]))
        message = await self.emulator.send_text(
            chat, user, text, reply_to=reply_to, forward_from=forward
        )
        return web.json_response(self._public(message))

    async def _inline(self, request: web.Request) -> web.Response:
        """``@bot <query>`` typed in a chat: the bot's inline results, once it answered."""
        data = await request.json()
        chat, user = self._chat_and_user(data)
        query = str(data.get("query", "")).strip()
        if not query:
            raise web.HTTPBadRequest(text="empty query")
        chat_type = "sender" if chat["type"] == "private" else chat["type"]
        query_id = await self.emulator.send_inline_query(user, query, chat_type)
        try:
            answer = await self.emulator.wait_until(
                lambda: self.emulator.inline_answers.get(query_id), timeout=INLINE_WAIT_SECONDS
            )
        except TimeoutError:
            return web.json_response({"query_id": query_id, "results": []})
        results = [
            {"id": r["id"], "title": r["title"], "text": r["text"]} for r in answer["shown"]
        ]
        return web.json_response({"query_id": query_id, "results": results})

    async def _inline_choose(self, request: web.Request) -> web.Response:
        data = await request.json()
        chat, user = self._chat_and_user(data)
        query_id, result_id = str(data.get("query_id", "")), str(data.get("result_id", ""))
        answer = self.emulator.inline_answers.get(query_id)
        if answer is None or not any(r["id"] == result_id for r in answer["shown"]):
            raise web.HTTPBadRequest(text="no such inline result")
        message = await self.emulator.choose_inline_result(chat, user, query_id, result_id)
        return web.json_response(self._public(message))

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise web.HTTPBadRequest(text="no file")
        fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        chat, user = self._chat_and_user(fields)
        data = upload.file.read()
        kind = upload.content_type or "application/octet-stream"
        caption = fields.get("caption") or None
        reply_to = self._reply_target(chat, fields)
        size = _picture_size(data) if kind.startswith("image/") else None
        if size is not None:
            message = await self.emulator.send_photo(
                chat, user, data, *size, caption=caption, reply_to=reply_to
            )
        elif kind.startswith(("audio/", "video/")):
            # A Telegram client reports the length it recorded; so does the page.
            seconds = round(float(fields.get("duration") or 0))
            message = await self.emulator.send_voice(
                chat,
                user,
                data,
                seconds,
                kind="voice" if fields.get("voice") else "audio",
                caption=caption,
                reply_to=reply_to,
            )
        else:
            message = await self.emulator.send_document(
                chat,
                user,
                data,
                upload.filename or "file",
                kind,
                caption=caption,
                reply_to=reply_to,
            )
        return web.json_response(self._public(message))

    async def _press(self, request: web.Request) -> web.Response:
        data = await request.json()
        chat, user = self._chat_and_user(data)
        try:
            query = await self.emulator.press_button(
                chat, user, int(data["message_id"]), str(data["data"])
            )
        except (KeyError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response({"callback_query_id": query})

    async def _file(self, request: web.Request) -> web.Response:
        stored = self.emulator.files.get(request.match_info["file_id"])
        if stored is None:
            raise web.HTTPNotFound()
        name = stored.path.rsplit("/", 1)[-1]
        content_type = (
            "image/png" if stored.data.startswith(b"\x89PNG") else "application/octet-stream"
        )
        return web.Response(
            body=stored.data,
            content_type=content_type,
            headers={
                "Content-Disposition": f'inline; filename="{name}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(heartbeat=20)
        await socket.prepare(request)
        self._sockets.add(socket)
        try:
            async for message in socket:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(socket)
        return socket


def ui_language() -> str:
    """The playground user's language from the environment (LANG), English otherwise."""
    code = (os.environ.get("LANG") or "en")[:2].lower()
    return code if code in ("en", "es") else "en"
