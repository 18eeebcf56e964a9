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

from bot.run import SECRET_HEADER, serve_webhook
from playground.api import BotAPIEmulator
from tests.conftest import make_settings
from tests.test_delivery import inbox_settled

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
            for _ in range(2):  # the second delivery of the same update is ignored
                async with session.post(
                    url, json=start_update(3, chat, user), headers={SECRET_HEADER: "s3cret-value"}
                ) as response:
                    assert response.status == 200
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200 and (await response.json())["ok"] is True
        await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]))
        await inbox_settled(emulator, tmp_path / "data", polled=False)
        replies = emulator.bot_messages(chat["id"])
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
            "HEALTH_PORT": str(health_port := free_port()),
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
        async with aiohttp.ClientSession() as session:
            health = f"http://127.0.0.1:{health_port}"
            async with session.get(f"{health}/healthz") as response:
                body = await response.json()
                assert response.status == 200 and body["tasks"]["poller"]["state"] == "running"
            async with session.get(f"{health}/metrics") as response:
                assert "condensa_updates_handled_total" in await response.text()
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


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(
        {"DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO), "LANG": "en_US.UTF-8"}
    )
    return env


async def run_condensa(tmp_path: Path, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """Run ``python -m bot ARGS`` with no token; return (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env=clean_env(tmp_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_without_a_token_the_bot_runs_a_local_console_chat(tmp_path: Path) -> None:
    from tests.conftest import ENGLISH_ARTICLE

    script = f"/start\n/paste\n{ENGLISH_ARTICLE}\n.\n".encode()
    code, output, err = await run_condensa(tmp_path, "console", stdin=script)
    assert code == 0, err[-2000:]
    assert "No TELEGRAM_BOT_TOKEN is set" in output
    assert "turns long text into something you can read" in output
    assert "Learned · 3 of 12 sentences, 25 %" in output, "the default method"


async def test_command_line_contract(tmp_path: Path) -> None:
    from tests.conftest import SPANISH_ARTICLE

    article = tmp_path / "noticia.txt"
    article.write_bytes(SPANISH_ARTICLE.encode("cp1252"))

    async def condensa(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        return await run_condensa(tmp_path, *args, stdin=stdin)

    code, out, err = await condensa("summarize", str(article), "--sentences", "2")
    assert code == 0, err
    lines = out.strip().split("\n")
    assert lines[0] == "extractive:auto · 2 of 12 sentences, 17 %"
    assert all(line in SPANISH_ARTICLE for line in lines[2:]) and len(lines) == 4

    code, out, err = await condensa("summarize", "-", stdin=b"Too short.")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err

    code, out, err = await condensa("summarize", str(tmp_path / "missing.txt"))
    assert code == 2 and "cannot read" in err and "Traceback" not in err

    code, out, err = await condensa("keywords", "-", stdin=SPANISH_ARTICLE.encode())
    assert code == 0, err
    phrases = [line.split("\t")[0] for line in out.strip().split("\n")]
    assert len(phrases) == 10 and len(set(phrases)) == 10
    assert not {"de", "y", "la", "el"} & {w for p in phrases for w in p.split()}


async def test_eval_progress_in_a_log_is_one_line_per_tenth(tmp_path: Path) -> None:
    import json

    from tests.conftest import ENGLISH_ARTICLE

    data = tmp_path / "mine.jsonl"
    rows = [
        {"id": str(n), "text": ENGLISH_ARTICLE, "summary": ENGLISH_ARTICLE.split(". ")[n % 5]}
        for n in range(37)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, err = await run_condensa(
        tmp_path, "eval", "summary", "--data", str(data), "--method", "lead"
    )
    assert code == 0, err[-2000:]
    progress = [line for line in err.splitlines() if line.startswith("eval lead:")]
    assert 10 <= len(progress) <= 11, err[-2000:]
    assert progress[-1].startswith("eval lead: 100 % (37/37 doc")
    assert "\r" not in err, "no bar redrawn into a log"
    assert "rouge" in out.lower()


async def test_eval_summary_compares_methods_and_baselines_on_several_sets(
    tmp_path: Path,
) -> None:
    import json

    from tests.conftest import ENGLISH_ARTICLE, SPANISH_ARTICLE

    files = []
    for name, article in (("news_en", ENGLISH_ARTICLE), ("news_es", SPANISH_ARTICLE)):
        sentences = article.split(". ")
        rows = [{"id": str(n), "text": article, "summary": sentences[n]} for n in range(4)]
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        files.append(str(path))
    code, out, err = await run_condensa(
        tmp_path, "eval", "summary", "--methods", "lead,longest", "--data", *files, "--json"
    )
    assert code == 0, err[-2000:]
    table = json.loads(out)
    assert set(table) == {"news_en", "news_es"} and set(table["news_en"]) == {"lead", "longest"}
    # References are sentences 0-3: Lead-3 contains three of them word for word.
    lead, longest = (table["news_en"][m]["rouge"]["rouge1"]["mean"] for m in ("lead", "longest"))
    assert lead > longest
    code, out, err = await run_condensa(
        tmp_path, "eval", "summary", "--methods", "lead,longest", "--data", *files
    )
    assert code == 0 and "| Lead-3 |" in out and "| Longest-3 |" in out and "news_es" in out
