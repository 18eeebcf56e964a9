"""Run modes end to end: webhook mode over HTTP, and ``python -m bot`` as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bot.emulator import BotAPIEmulator
from bot.run import SECRET_HEADER, serve_webhook
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_update(update_id: int, chat: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 500 + update_id,
            "date": 1_700_000_000,
            "chat": chat,
            "from": user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def test_webhook_mode_checks_the_secret(emulator: BotAPIEmulator, tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(
        emulator,
        tmp_path / "data",
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret="s3cret-value",
        webhook_listen="127.0.0.1",
        webhook_port=port,
    )
    stop = asyncio.Event()
    server = asyncio.create_task(serve_webhook(settings, stop))
    user = emulator.add_user(42, "Wendy")
    chat = emulator.private_chat(user)
    try:
        await emulator.wait_until(lambda: emulator.webhook.get("url"))
        assert emulator.webhook["secret_token"] == "s3cret-value"
        url = f"http://127.0.0.1:{port}/hook"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=start_update(1, chat, user)) as response:
                assert response.status == 403
            async with session.post(
                url, json=start_update(2, chat, user), headers={SECRET_HEADER: "wrong"}
            ) as response:
                assert response.status == 403
            assert not emulator.bot_messages(chat["id"])
            async with session.post(
                url, json=start_update(3, chat, user), headers={SECRET_HEADER: "s3cret-value"}
            ) as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200 and (await response.json())["ok"] is True
        replies = await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]))
        assert len(replies) == 1 and "Condensa" in replies[0]["text"]
    finally:
        stop.set()
        await server


async def test_python_m_bot_polls_answers_and_stops_on_sigterm(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": emulator.token,
            "TELEGRAM_API_URL": emulator.url,
            "DATA_DIR": str(tmp_path / "data"),
            "LOG_LEVEL": "DEBUG",
            "PYTHONPATH": str(REPO),
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(emulator.polling_started.wait(), 60)
        user = emulator.add_user(7, "Pat", "es")
        chat = emulator.private_chat(user)
        started = asyncio.get_running_loop().time()
        await emulator.send_text(chat, user, "/start")
        reply = (await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]), timeout=30))[
            0
        ]
        assert "Condensa" in reply["text"]
        assert asyncio.get_running_loop().time() - started < 2.0, "answers /start within 2 s"
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    log = stderr.decode()
    assert "Condensa is ready" in log
    assert emulator.token not in log, "the token never reaches the logs"
    assert emulator.token.split(":")[1] not in log
    assert (tmp_path / "data" / "condensa.sqlite3").exists()
