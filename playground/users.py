"""Simulated Telegram users: they send, edit, forward, upload and press buttons as people do."""

from __future__ import annotations

import re
import time
from typing import Any

from playground.parser import utf16_len
from playground.state import EmulatorState

_COMMAND_RE = re.compile(r"^/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?")


class SimulatedUsers(EmulatorState):
    """The "client side" of the emulator: each method plays a user action and queues the
    update the bot will receive."""

    async def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue an update of ``kind`` ("message", "callback_query", …) for the bot."""
        self.last_update_id = next(self._update_ids)
        update = {"update_id": self.last_update_id, kind: payload}
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

    async def redeliver(self, update: dict[str, Any]) -> None:
        """Telegram delivers an update again (it never saw the acknowledgement)."""
        self._updates.append(dict(update))
        await self._notify("update", update)

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
                {"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))}
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
        else:  # the chat's people see it all the same
            await self._notify("chat_message", message)
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
        forward_from: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user sends (or forwards) a file (optionally captioned, e.g. with ``/summary``)."""
        stored = self.store_file(data, file_name, declared_size)
        message = self._base_message(chat, user, reply_to, thread_id)
        if forward_from is not None:
            message["forward_origin"] = {
                "type": "user",
                "date": int(time.time()) - 60,
                "sender_user": forward_from,
            }
        message["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": f"U{stored.file_id}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": stored.size,
        }
        return await self._deliver_media(chat, message, caption)

    async def send_voice(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        data: bytes,
        duration: int,
        *,
        kind: str = "voice",
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
        forward_from: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user sends (or forwards) a voice note (``kind`` "audio" or "video_note" for
        those), ``duration`` seconds long as the client reports it."""
        stored = self.store_file(data, f"{kind}.ogg")
        message = self._base_message(chat, user, reply_to, None)
        media: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": f"U{stored.file_id}",
            "duration": duration,
            "file_size": stored.size,
        }
        if kind == "video_note":
            media["length"] = 240
        else:
            media["mime_type"] = "audio/ogg"
        message[kind] = media
        if forward_from is not None:
            message["forward_origin"] = {
                "type": "user",
                "date": message["date"],
                "sender_user": forward_from,
            }
        return await self._deliver_media(chat, message, caption)

    async def send_photo(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        data: bytes,
        width: int,
        height: int,
        *,
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
        media_group_id: str | None = None,
    ) -> dict[str, Any]:
        """A user sends a photo (one of an album when ``media_group_id`` is given); Telegram
        offers it in sizes, the largest being ``data`` (a thumbnail entry points at the same
        bytes)."""
        stored = self.store_file(data, "photo.jpg")
        message = self._base_message(chat, user, reply_to, None)
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        scale = 90 / max(width, height)
        message["photo"] = [
            {
                "file_id": stored.file_id,
                "file_unique_id": f"U{stored.file_id}t",
                "width": max(1, round(width * scale)),
                "height": max(1, round(height * scale)),
                "file_size": min(stored.size, 2000),
            },
            {
                "file_id": stored.file_id,
                "file_unique_id": f"U{stored.file_id}",
                "width": width,
                "height": height,
                "file_size": stored.size,
            },
        ]
        return await self._deliver_media(chat, message, caption)

    async def _deliver_media(
        self, chat: dict[str, Any], message: dict[str, Any], caption: str | None
    ) -> dict[str, Any]:
        if caption:
            message["caption"] = caption
            command = _COMMAND_RE.match(caption)
            if command:
                message["caption_entities"] = [
                    {"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))}
                ]
        self.messages[(chat["id"], message["message_id"])] = message
        if self.bot_sees(chat, message):
            await self.push_update("message", message)
        return message

    async def send_inline_query(
        self, user: dict[str, Any], query: str, chat_type: str = "private"
    ) -> str:
        """A user types ``@bot <query>`` in a chat of ``chat_type``; returns the query id
        (the bot's answer lands in :attr:`inline_answers` under it)."""
        query_id = f"I{next(self._callback_ids)}"
        inline = {
            "id": query_id,
            "from": user,
            "query": query[:256],  # Telegram's limit on an inline query
            "offset": "",
            "chat_type": chat_type,
        }
        self.inline_queries[query_id] = inline
        await self.push_update("inline_query", inline)
        return query_id

    async def choose_inline_result(
        self, chat: dict[str, Any], user: dict[str, Any], query_id: str, result_id: str
    ) -> dict[str, Any]:
        """The user picks one of the bot's inline results: it is posted into ``chat`` as their
        message "via @bot" (the bot is not sent it: the playground's chats would loop)."""
        shown = next(r for r in self.inline_answers[query_id]["shown"] if r["id"] == result_id)
        message = self._base_message(chat, user, None, None)
        message["text"] = shown["text"]
        if shown.get("entities"):
            message["entities"] = shown["entities"]
        message["via_bot"] = self.bot_user
        self.messages[(chat["id"], message["message_id"])] = message
        await self._notify("chat_message", message)
        return message

    async def send_guest_message(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        text: str,
        *,
        reply_to: dict[str, Any] | None = None,
    ) -> str:
        """A user mentions the bot (``@bot …``) in ``chat``, which the bot need not be a member
        of (guest mode); returns the guest query id (the answer lands in
        :attr:`guest_answers` under it)."""
        message = self._base_message(chat, user, reply_to, None)
        message["text"] = text
        mention = re.match(r"@\w+", text)
        if mention:
            message["entities"] = [
                {"type": "mention", "offset": 0, "length": utf16_len(mention.group(0))}
            ]
        query_id = f"G{next(self._callback_ids)}"
        message["guest_query_id"] = query_id
        self.messages[(chat["id"], message["message_id"])] = message
        self.guest_queries[query_id] = message
        await self.push_update("guest_message", message)
        return query_id

    async def react(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        message_id: int,
        emoji: str = "👍",
        *,
        remove: bool = False,
    ) -> None:
        """A member adds (or takes back) a reaction to a message: ``message_reaction``."""
        reaction = [{"type": "emoji", "emoji": emoji}]
        await self.push_update(
            "message_reaction",
            {
                "chat": chat,
                "message_id": message_id,
                "user": user,
                "date": int(time.time()),
                "old_reaction": reaction if remove else [],
                "new_reaction": [] if remove else reaction,
            },
        )

    async def count_reactions(
        self, chat: dict[str, Any], message_id: int, counts: dict[str, int]
    ) -> None:
        """Telegram reports a message's anonymous reaction totals: ``message_reaction_count``."""
        await self.push_update(
            "message_reaction_count",
            {
                "chat": chat,
                "message_id": message_id,
                "date": int(time.time()),
                "reactions": [
                    {"type": {"type": "emoji", "emoji": emoji}, "total_count": total}
                    for emoji, total in counts.items()
                ],
            },
        )

    async def pin(self, chat: dict[str, Any], user: dict[str, Any], message_id: int) -> None:
        """A member pins a message: the service message with ``pinned_message``."""
        pinned = self.messages.get((chat["id"], message_id))
        if pinned is None:
            raise KeyError(f"no message {message_id} in chat {chat['id']}")
        message = self._base_message(chat, user, None, None)
        message["pinned_message"] = {
            k: v for k, v in self._public(pinned).items() if k != "reply_to_message"
        }
        self.messages[(chat["id"], message["message_id"])] = message
        await self.push_update("message", message)

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

    async def add_bot(self, chat: dict[str, Any], by: dict[str, Any]) -> None:
        """A user adds the bot to a group (a ``my_chat_member`` update)."""
        self.member_status[(chat["id"], self.bot_user["id"])] = "member"
        await self._bot_membership(chat, by, "left", "member")

    async def remove_bot(self, chat: dict[str, Any], by: dict[str, Any]) -> None:
        """An admin removes the bot from a group (a ``my_chat_member`` update)."""
        await self._bot_membership(chat, by, "member", "left")

    async def _bot_membership(
        self, chat: dict[str, Any], by: dict[str, Any], old: str, new: str
    ) -> None:
        await self.push_update(
            "my_chat_member",
            {
                "chat": chat,
                "from": by,
                "date": int(time.time()),
                "old_chat_member": {"status": old, "user": self.bot_user},
                "new_chat_member": {"status": new, "user": self.bot_user},
            },
        )
