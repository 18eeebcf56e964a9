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
import json
import re
import time
from typing import Any

from aiohttp import BodyPartReader, web

from playground.conformance import check_call
from playground.parser import BotAPIError, parse_html, utf16_len
from playground.state import Fault, RecordedCall
from playground.users import SimulatedUsers

ONLY_WHEN_ASKED = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
"""Update kinds Telegram sends only to a bot that names them in ``allowed_updates``."""

MAX_TEXT_LENGTH = 4096

MAX_CAPTION_LENGTH = 1024

MAX_CALLBACK_DATA_BYTES = 64

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024

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


class BotAPIEmulator(SimulatedUsers):
    """An in-memory Telegram with a real HTTP Bot API server (see the module docstring)."""

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
        async with self._changed:  # a test may wait for the call itself (a long poll's offset)
            self._changed.notify_all()
        try:
            if self.strict:
                try:
                    check_call(method, params)
                except BotAPIError:
                    call.nonconforming = True
                    raise
            malformed = self._maybe_fault(method)
            if malformed is not None:
                return web.json_response({"ok": True, "result": malformed.result})
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

    def _maybe_fault(self, method: str) -> Fault | None:
        """Raise the injected error for ``method``; return an injected malformed success."""
        for fault in self.faults:
            if fault.method.lower() == method.lower() and fault.times > 0:
                fault.times -= 1
                if fault.status == 200:
                    return fault
                if fault.status == 429:
                    retry = fault.retry_after or 1
                    raise BotAPIError(429, f"Too Many Requests: retry after {retry}", retry)
                raise BotAPIError(fault.status, fault.description or "Internal Server Error")
        return None

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

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        try:
            chat = self.chats.get(int(chat_id))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            chat = None
        if chat is None and str(chat_id).isdigit() and int(str(chat_id)) in self.users:
            # A user who never started the bot: Telegram refuses the first message.
            raise BotAPIError(403, "Forbidden: bot can't initiate conversation with a user")
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
        if utf16_len(text) > limit:
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
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed) if allowed else None
        if allowed is not None:  # as Telegram: remembered until a call names others
            self.allowed_updates = list(allowed)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        # Updates the bot did not ask for are never sent: some kinds only when named.
        wanted = set(self.allowed_updates) if self.allowed_updates else None
        self._updates = [
            u
            for u in self._updates
            if (kind := next(k for k in u if k != "update_id")) in (wanted or {kind})
            and (wanted is not None or kind not in ONLY_WHEN_ASKED)
        ]
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
        if self.member_status.get((chat["id"], self.bot_user["id"])) in ("left", "kicked"):
            raise BotAPIError(403, "Forbidden: bot is not a member of the group chat")
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

    async def _api_sendmessagedraft(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        if chat["type"] != "private":
            raise BotAPIError(400, "Bad Request: message drafts can be sent to private chats only")
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise BotAPIError(400, "Bad Request: invalid draft_id")
        text, _ = self._formatted(params, "text", 4096)
        self.drafts.setdefault((chat["id"], draft_id), []).append(text)
        await self._notify("draft", {"chat_id": chat["id"], "draft_id": draft_id})
        return True

    async def _api_answerinlinequery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("inline_query_id"))
        if query_id not in self.inline_queries or query_id in self.inline_answers:
            raise BotAPIError(
                400,
                "Bad Request: query is too old and response timeout expired "
                "or query ID is invalid",
            )
        results = params.get("results")
        if not isinstance(results, list) or len(results) > 50:
            raise BotAPIError(400, "Bad Request: RESULTS_TOO_MUCH")
        shown = []
        for result in results:
            content = result.get("input_message_content", {}) if isinstance(result, dict) else {}
            if not isinstance(result, dict) or not result.get("id") or not result.get("title"):
                raise BotAPIError(400, "Bad Request: RESULT_ID_INVALID")
            text, entities = self._formatted(content, "message_text", 4096)
            shown.append(
                {"id": result["id"], "title": result["title"], "text": text, "entities": entities}
            )
        self.inline_answers[query_id] = {**params, "shown": shown}
        await self._notify("inline_answer", {"id": query_id})
        return True

    async def _api_answerguestquery(self, params: dict[str, Any]) -> dict[str, Any]:
        query_id = str(params.get("guest_query_id"))
        if query_id not in self.guest_queries or query_id in self.guest_answers:
            raise BotAPIError(400, "Bad Request: guest query is too old or query ID is invalid")
        result = params.get("result")
        if not isinstance(result, dict) or not result.get("id") or not result.get("title"):
            raise BotAPIError(400, "Bad Request: RESULT_ID_INVALID")
        content = result.get("input_message_content") or {}
        text, entities = self._formatted(content, "message_text", 4096)
        inline_message_id = f"GM{query_id}"
        self.guest_answers[query_id] = {
            **params,
            "text": text,
            "entities": entities,
            "inline_message_id": inline_message_id,
        }
        # Telegram posts the answer into the chat, as a reply to the mention.
        asked = self.guest_queries[query_id]
        chat = asked["chat"]
        posted: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
            "via_bot": self.bot_user,
            "reply_to_message": {
                k: v for k, v in self._public(asked).items() if k != "reply_to_message"
            },
            "text": text,
        }
        if entities:
            posted["entities"] = entities
        self.messages[(chat["id"], posted["message_id"])] = posted
        await self._notify("guest_answer", {"id": query_id})
        await self._notify("chat_message", posted)
        return {"inline_message_id": inline_message_id}

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

    async def _api_leavechat(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        self.member_status[(chat["id"], self.bot_user["id"])] = "left"
        await self._notify("left", {"chat_id": chat["id"]})
        return True

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
