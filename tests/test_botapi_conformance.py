"""The emulator refuses, as the Bot API would, every call that does not conform to the Bot API
10.1 method list (and every other test's emulator asserts that the bot made no such call)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from playground.api import BotAPIEmulator
from playground.conformance import SPEC

SHARED_SPEC = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "botapi" / "botapi_methods.json"
)


def test_the_kept_copy_is_the_shared_method_list() -> None:
    if not SHARED_SPEC.exists():
        pytest.skip("no shared data next to this checkout")
    assert json.loads(SPEC.read_text()) == json.loads(SHARED_SPEC.read_text())
    source = json.loads(SPEC.read_text())["source"]
    notice = (SPEC.parent / "NOTICE.md").read_text()
    assert source["commit"] in notice and "MIT License" in notice


@pytest.fixture
async def raw(raw_emulator: BotAPIEmulator) -> AsyncIterator[tuple[BotAPIEmulator, Any]]:
    """An emulator of its own (these calls are refused on purpose) and a caller."""
    emulator = raw_emulator
    user = emulator.add_user(5, "Ann")
    chat = emulator.private_chat(user)
    async with aiohttp.ClientSession() as session:

        async def call(method: str, **params: Any) -> tuple[int, dict[str, Any]]:
            url = f"{emulator.url}/bot{emulator.token}/{method}"
            if method != "setMyCommands":
                params = {"chat_id": chat["id"], **params}
            async with session.post(url, json=params) as response:
                return response.status, await response.json()

        yield emulator, call


@pytest.mark.parametrize(
    ("method", "params", "status", "description"),
    [
        ("sendMessage", {"text": "hello"}, 200, None),
        ("sendMesage", {"text": "hello"}, 404, "Not Found: method not found"),
        ("sendMessage", {"txt": "hello"}, 400, 'unknown parameter "txt"'),
        ("sendMessage", {}, 400, 'parameter "text" is required'),
        ("sendMessage", {"text": "x", "disable_notification": "maybe"}, 400, "must be Boolean"),
        ("sendMessage", {"text": "x" * 4097}, 400, "message is too long"),
        ("sendMessage", {"text": "<b>x</b>" + "y" * 4090, "parse_mode": "HTML"}, 200, None),
        ("sendMessage", {"text": "x", "parse_mode": "Markdown3"}, 400, "parse_mode"),
        ("sendMessage", {"text": "<b>x", "parse_mode": "HTML"}, 400, "can't parse entities"),
        (
            "sendMessage",
            {"text": "x", "reply_parameters": {"message_id": "7"}},
            400,
            "ReplyParameters.message_id must be Integer",
        ),
        (
            "sendMessage",
            {
                "text": "x",
                "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "d" * 65}]]},
            },
            400,
            "InlineKeyboardButton.callback_data must be 1-64 bytes long",
        ),
        (
            "sendMessage",
            {"text": "x", "reply_markup": {"inline_keyboard": [[{"text": "a", "colour": "red"}]]}},
            400,
            "has no field 'colour'",
        ),
        ("sendChatAction", {"action": "dancing"}, 400, "action may not be 'dancing'"),
        ("sendChatAction", {"action": "typing"}, 200, None),
        ("setMyCommands", {"commands": [{"command": "x" * 33, "description": "d"}]}, 400, "1-32"),
    ],
)
async def test_a_call_that_does_not_conform_is_refused_as_telegram_would(
    raw: tuple[BotAPIEmulator, Any],
    method: str,
    params: dict[str, Any],
    status: int,
    description: str | None,
) -> None:
    _, call = raw
    got, body = await call(method, **params)
    assert got == status, body
    if description is None:
        assert body["ok"] is True
    else:
        assert body["ok"] is False and description in body["description"], body


async def test_update_kinds_are_checked(raw: tuple[BotAPIEmulator, Any]) -> None:
    emulator, _ = raw
    url = f"{emulator.url}/bot{emulator.token}/getUpdates"
    async with aiohttp.ClientSession() as session:
        bad = {"allowed_updates": ["message", "telepathy"], "timeout": 0}
        async with session.post(url, json=bad) as response:
            assert response.status == 400
            assert "telepathy" in (await response.json())["description"]
        good = {"allowed_updates": ["message", "message_reaction_count"], "timeout": 0}
        async with session.post(url, json=good) as response:
            assert response.status == 200
