"""Nothing dies quietly: supervised tasks restart, /healthz and /metrics tell, a task that keeps
dying makes the process exit non-zero, a flood is paused rather than held in memory."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.delivery import Intake, Saturated, Supervisor
from bot.delivery.health import serve_health
from bot.delivery.pacing import LocalPace
from bot.run import shut_down
from playground.api import BotAPIEmulator
from services.core.errors import Busy
from tests.conftest import BotFactory
from tests.test_delivery import bot_env
from tests.test_run_modes import free_port


async def until(predicate: Any, seconds: float = 20.0) -> None:
    """Wait for a state of the bot that no emulator call reveals (a supervisor's state)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_a_malformed_get_updates_answer_restarts_the_poller_and_healthz_shows_it(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot()
    runtime.supervisor.first_delay = 3.0  # long enough to see the restart from outside
    port = free_port()
    server = await serve_health(port, runtime.supervisor, runtime.healthy, runtime.metrics)
    try:
        status, body = await get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and body["tasks"]["poller"]["state"] == "running"
        # PTB raises a plain TypeError on a result that is not a list: not a TelegramError.
        emulator.inject_fault("getUpdates", 200, result={"not": "a list"})
        await until(lambda: runtime.supervisor.report()["poller"]["state"] == "restarting")
        status, body = await get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503 and body["ok"] is False
        assert body["tasks"]["poller"]["restarts"] == 1
        assert "TypeError" in body["tasks"]["poller"]["last_error"]
        await until(lambda: runtime.supervisor.report()["poller"]["state"] == "running", 10)
        user = emulator.add_user(5, "Ann", "en")
        chat = emulator.private_chat(user)
        await emulator.send_text(chat, user, "/start")
        replies = await emulator.wait_until(lambda: emulator.bot_messages(chat["id"]))
        assert "Condensa" in replies[0]["text"], "the restarted poller answers"
        status, body = await get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
        assert runtime.intake is not None
        await until(lambda: runtime.intake.in_hand == 0)  # marked done just after the reply
        status, text = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'condensa_task_restarts_total{task="poller"} 1.0' in text
        assert "condensa_updates_handled_total 1.0" in text
        assert 'condensa_command_seconds_count{command="start"} 1.0' in text
        assert 'condensa_command_seconds_quantile{command="start",quantile="0.95"}' in text
        assert "condensa_updates_in_hand 0.0" in text
    finally:
        await server.cleanup()


async def test_a_task_that_keeps_dying_is_given_up_and_a_quiet_one_is_stale() -> None:
    supervisor = Supervisor(max_failures=2, window=60, first_delay=0.01)
    runs = 0

    async def broken() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("boom")

    async def silent() -> None:
        await asyncio.Event().wait()

    supervisor.run("broken", broken)
    supervisor.run("silent", silent, stale_after=0.2)
    await asyncio.wait_for(supervisor.failed.wait(), 5)
    assert runs == 3, "restarted twice, then given up"
    report = supervisor.report()
    assert report["broken"]["state"] == "failed" and report["broken"]["restarts"] == 2
    await until(lambda: not supervisor.report()["silent"]["up"], 2)
    assert report["silent"]["state"] == "running", "running, but silent past its heartbeat"
    assert not supervisor.healthy()
    await supervisor.stop()


async def test_python_m_bot_exits_non_zero_when_its_poller_keeps_dying(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    env = bot_env(emulator, tmp_path / "data", HEALTH_PORT=str(free_port()))
    emulator.inject_fault("getUpdates", 200, times=1000, result="garbage")
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
        _, stderr = await asyncio.wait_for(process.communicate(), 120)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
    log = stderr.decode()
    assert process.returncode == 1, log[-3000:]
    assert log.count("restarting task poller") == 5, "five restarts, then given up"
    assert "giving up" in log and "Traceback" in log, "each death is logged with its traceback"
    assert emulator.token not in log


async def test_a_flood_waits_for_room_instead_of_growing_memory() -> None:
    class Ledger:
        async def inbox_add(self, updates: list[tuple[int, int, str]]) -> list[int]:
            return [u for u, _, _ in updates]

    from telegram import Update

    def update(update_id: int) -> Update:
        return Update.de_json(
            {
                "update_id": update_id,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": update_id, "type": "private"},
                    "text": "hi",
                },
            },
            None,
        )

    queue: asyncio.Queue[object] = asyncio.Queue()
    intake = Intake(Ledger(), queue, lambda data: update(0), max_in_hand=10)  # type: ignore[arg-type]
    assert await intake.accept([update(i) for i in range(1, 11)]) == 10
    assert not intake.has_room()
    with pytest.raises(Saturated):  # a webhook answers 429: Telegram delivers it again
        await intake.accept([update(11)], wait=False)
    waiting = asyncio.create_task(intake.accept([update(12)]))  # polling waits
    await asyncio.sleep(0)
    assert not waiting.done() and queue.qsize() == 10
    intake.release([1, 2])
    assert await asyncio.wait_for(waiting, 2) == 1
    assert queue.qsize() == 11 and intake.in_hand == 9


async def test_per_chat_pace_state_is_bounded() -> None:
    pace = LocalPace()
    pace._chats = type(pace._chats)(maxsize=1000, ttl=3600)  # noqa: SLF001 - a small cap
    for chat in range(5000):
        await pace.has_capacity(chat)
    assert pace.chats == 1000


class GatedSummaries:
    """A summarizer that answers only once the test opens the gate (work held in hand)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    def methods(self) -> list[str]:
        return ["lexrank"]

    async def summarize(self, text: str, options: Any) -> Any:
        await self.gate.wait()
        raise Busy("try again")


async def test_a_saturated_bot_answers_the_webhook_429_and_keeps_nothing(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    """A webhook bot holding MAX_UPDATES_IN_HAND updates refuses the next one at once (429, so
    Telegram delivers it again later) instead of holding the request or growing memory."""
    from bot.app import BotRuntime
    from bot.factories import Services
    from bot.run import SECRET_HEADER, open_webhook
    from tests.conftest import ENGLISH_ARTICLE, make_settings
    from tests.test_e2e_chat import UnusedKeywords

    port = free_port()
    settings = make_settings(
        emulator,
        tmp_path / "data",
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret="s3cret-value",
        webhook_listen="127.0.0.1",
        webhook_port=port,
        max_updates_in_hand=10,
    )
    summaries = GatedSummaries()
    runtime = BotRuntime(settings, services=Services(summaries, UnusedKeywords()), warm_up=False)
    await runtime.start(polling=False)
    runner = await open_webhook(settings, runtime)
    statuses = []
    try:
        async with aiohttp.ClientSession() as session:
            for number in range(15):
                sender = emulator.add_user(100 + number, f"U{number}")
                chat = emulator.private_chat(sender)
                # Written in the emulator (so replies find it), delivered here by webhook.
                message = await emulator.send_text(chat, sender, "/summary " + ENGLISH_ARTICLE)
                update = {"update_id": emulator.last_update_id, "message": message}
                async with session.post(
                    f"http://127.0.0.1:{port}/hook",
                    json=update,
                    headers={SECRET_HEADER: "s3cret-value"},
                ) as response:
                    statuses.append(response.status)
        assert statuses == [200] * 10 + [429] * 5, statuses
        assert runtime.intake is not None and runtime.intake.in_hand == 10
    finally:
        summaries.gate.set()  # the ten in hand finish, so the bot stops cleanly
        await runtime.stop()
        await runner.cleanup()


async def test_a_stop_that_runs_out_of_time_still_closes_the_store(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot()
    store = runtime.store
    assert store is not None
    stuck = asyncio.Event()
    real_stop = runtime.application.stop

    async def hangs() -> None:
        await stuck.wait()  # an application stop that never returns

    runtime.application.stop = hangs  # type: ignore[method-assign]
    try:
        await shut_down(runtime, 1.0)
        # The SQLite connection's thread is gone: an open one kept the process alive.
        assert runtime.store is None
        connection = store._sqlite.connection  # type: ignore[attr-defined]
        assert not connection._running
        # aiosqlite stops its thread after close() returns: wait for that thread to end.
        await asyncio.to_thread(connection._thread.join, 10.0)
        assert not connection._thread.is_alive()
    finally:
        runtime.application.stop = real_stop  # type: ignore[method-assign]
        stuck.set()
        if runtime.application.running:
            await runtime.application.stop()
        await runtime.application.shutdown()
        await runtime.supervisor.stop()


async def test_a_job_that_stops_ending_well_turns_health_down() -> None:
    supervisor = Supervisor()
    supervisor.expect("purge", stale_after=0.3)
    supervisor.expect("digests", stale_after=None)
    assert supervisor.healthy(), "a job has its stale_after for its first run"
    supervisor.ran("purge")
    supervisor.ran("digests", RuntimeError("model server down"))
    report = supervisor.report()
    assert report["purge"]["runs"] == 1 and report["purge"]["failures"] == 0
    assert report["digests"]["failures"] == 1 and report["digests"]["up"]
    assert "model server down" in report["digests"]["last_error"]
    supervisor.ran("purge", RuntimeError("disk full"))  # fails from now on
    await until(lambda: not supervisor.report()["purge"]["up"], 3)
    assert not supervisor.healthy()
    assert supervisor.report()["purge"]["state"] == "scheduled"
    supervisor.ran("purge")
    assert supervisor.healthy(), "a run that ends well brings it back"
    await supervisor.stop()
    assert supervisor.report()["purge"]["state"] == "stopped"


async def test_the_bots_jobs_are_on_healthz_and_a_failing_purge_is_counted(
    emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    runtime = await make_bot()
    store = runtime.store
    assert store is not None

    async def broken(cutoff: int) -> int:
        raise RuntimeError("the archive is unreadable")

    store.purge_stored_before = broken  # type: ignore[method-assign]
    port = free_port()
    server = await serve_health(port, runtime.supervisor, runtime.healthy, runtime.metrics)
    try:
        # The job queue's heartbeat runs a second in, the retention purge five seconds in.
        await until(lambda: runtime.supervisor.report()["job-queue"]["runs"] >= 1)
        await until(lambda: runtime.supervisor.report()["retention-purge"]["failures"] == 1)
        status, body = await get(f"http://127.0.0.1:{port}/healthz")
        tasks = body["tasks"]
        assert {"poller", "job-queue", "delivery-purge", "retention-purge"} <= set(tasks)
        assert "scheduled-digests" in tasks
        assert "the archive is unreadable" in tasks["retention-purge"]["last_error"]
        assert status == 200, "one failed daily purge is reported; the next day decides"
        status, text = await get(f"http://127.0.0.1:{port}/metrics")
        assert 'condensa_job_failures_total{job="retention-purge"} 1.0' in text
        assert 'condensa_task_up{task="job-queue"} 1.0' in text
    finally:
        await server.cleanup()
