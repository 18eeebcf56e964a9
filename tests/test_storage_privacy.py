"""Deleted means gone: stored text is sealed per group, and deletions leave no readable bytes.

Every check reads the raw bytes of every file under the data directory (database, WAL,
shared memory, key file), while the store is open and after it is closed.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotRuntime
from playground.api import BotAPIEmulator
from services.core.types import ChatMessage
from services.storage.crypto import (
    KEY_FILE_NAME,
    GroupCipher,
    SealedDataError,
    StorageKeyError,
    encode_key,
    new_key,
)
from services.storage.sqlite import MIGRATIONS, SQLiteStore
from tests.conftest import BotFactory
from tests.test_e2e_digest import (
    GROUP_ID,
    command,
    digest_services,
    eventually,
    group,  # noqa: F401 - the fixture
    post_conversation,
    store_of,
)

REPO = Path(__file__).resolve().parents[1]
GROUP = -100555
OTHER = -100777


def disk_bytes(directory: Path) -> bytes:
    """Everything under ``directory`` as one byte string."""
    return b"\n".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def sealed_rows(database: Path, chat_id: int, user_id: int | None = None) -> list[bytes]:
    """The raw stored blobs (text and author) of a group's rows, read with plain sqlite3."""
    query = "SELECT text, author FROM group_messages WHERE chat_id = ?"
    parameters: list[int] = [chat_id]
    if user_id is not None:
        query += " AND user_id = ?"
        parameters.append(user_id)
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute(query, parameters).fetchall()
    finally:
        connection.close()
    return [bytes(value) for row in rows for value in row]


def message(chat_id: int, message_id: int, user_id: int, text: str) -> ChatMessage:
    return ChatMessage(chat_id, message_id, user_id, f"User{user_id}", 1_700_000_000, text)


def secret_texts(user_id: int, count: int = 6) -> list[str]:
    return [f"Secret plan {user_id}-{i}: meet behind the old mill at dawn." for i in range(count)]


async def filled_store(directory: Path, **options: Any) -> SQLiteStore:
    store = await SQLiteStore.open(directory / "condensa.sqlite3", **options)
    rows = [
        message(GROUP, 10 * user_id + i, user_id, text)
        for user_id in (1, 2)
        for i, text in enumerate(secret_texts(user_id))
    ]
    rows += [message(OTHER, 500 + i, 3, text) for i, text in enumerate(secret_texts(3))]
    assert await store.save_messages(rows) == len(rows)
    return store


def assert_absent(directory: Path, needles: list[bytes]) -> None:
    assert needles
    data = disk_bytes(directory)
    found = [n for n in needles if n in data]
    assert not found, f"{len(found)} of {len(needles)} deleted values are still on disk"


async def test_text_and_authors_never_reach_the_disk_in_plain(tmp_path: Path) -> None:
    store = await filled_store(tmp_path)
    try:
        data = disk_bytes(tmp_path)
        for user_id in (1, 2, 3):
            for text in secret_texts(user_id):
                assert text.encode() not in data
            assert f"User{user_id}".encode() not in data
        back = await store.messages(GROUP)
        assert [m.text for m in back] == secret_texts(1) + secret_texts(2)
        assert {m.author for m in back} == {"User1", "User2"}
    finally:
        await store.close()
    key_file = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize("how", ["forget", "optout", "purge"])
async def test_deleted_rows_leave_no_bytes_behind(tmp_path: Path, how: str) -> None:
    store = await filled_store(tmp_path)
    database = tmp_path / "condensa.sqlite3"
    gone = sealed_rows(database, GROUP, user_id=1)
    kept = sealed_rows(database, GROUP, user_id=2)
    try:
        if how == "forget":
            assert await store.forget_user(GROUP, 1) == 6
        elif how == "optout":
            assert await store.set_opt_out(GROUP, 1, True) == 6
        else:
            connection = sqlite3.connect(database)
            connection.execute("UPDATE group_messages SET stored_at = 0 WHERE user_id = 1")
            connection.commit()
            connection.close()
            assert await store.purge_stored_before(int(time.time()) - 3600) == 6
        assert_absent(tmp_path, gone)
        data = disk_bytes(tmp_path)
        assert all(value in data for value in kept), "the other member's rows are intact"
        assert [m.user_id for m in await store.messages(GROUP)] == [2] * 6
    finally:
        await store.close()
    assert_absent(tmp_path, gone)


@pytest.mark.parametrize("how", ["digest_off", "removed"])
async def test_a_shredded_group_is_unreadable_even_from_a_copy(tmp_path: Path, how: str) -> None:
    store = await filled_store(tmp_path)
    database = tmp_path / "condensa.sqlite3"
    backup = tmp_path.parent / f"{tmp_path.name}-backup.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute("VACUUM INTO ?", (str(backup),))
    (wrapped,) = connection.execute(
        "SELECT wrapped FROM group_keys WHERE chat_id = ?", (GROUP,)
    ).fetchone()
    connection.close()
    gone = sealed_rows(database, GROUP)
    try:
        if how == "digest_off":
            await store.set_digest_enabled(GROUP, False)
        else:
            await store.forget_chat(GROUP)
        assert_absent(tmp_path, [*gone, bytes(wrapped)])
        assert await store.messages(GROUP) == []
        assert len(await store.messages(OTHER)) == 6
    finally:
        await store.close()
    # The backup still holds the sealed rows, but the group key is gone from the live data:
    # a restart with the right master key reads the other group and cannot read this one.
    reopened = await SQLiteStore.open(database)
    try:
        assert await reopened.messages(GROUP) == []
        restored = sqlite3.connect(backup)
        rows = restored.execute(
            "SELECT message_id, text FROM group_messages WHERE chat_id = ?", (GROUP,)
        ).fetchall()
        restored.close()
        assert rows
        with pytest.raises(KeyError):
            await reopened.db.run(  # the shredded key
                lambda tx: reopened._cipher(tx, GROUP, create=False)  # noqa: SLF001
            )
    finally:
        await reopened.close()
        backup.unlink()


async def test_without_the_master_key_nothing_is_readable(tmp_path: Path) -> None:
    key = encode_key(new_key())
    store = await filled_store(tmp_path, storage_key=key)
    await store.close()
    assert not (tmp_path / KEY_FILE_NAME).exists(), "STORAGE_KEY set: no key file is written"
    database = tmp_path / "condensa.sqlite3"
    connection = sqlite3.connect(database)
    message_id, sealed = connection.execute(
        "SELECT message_id, text FROM group_messages WHERE chat_id = ? LIMIT 1", (GROUP,)
    ).fetchone()
    connection.close()
    with pytest.raises(SealedDataError):
        GroupCipher(new_key(), GROUP).open(message_id, "text", bytes(sealed))

    with pytest.raises(StorageKeyError, match="missing"):
        await SQLiteStore.open(database)  # no STORAGE_KEY and no key file
    with pytest.raises(StorageKeyError, match="not the key"):
        await SQLiteStore.open(database, storage_key=encode_key(new_key()))
    with pytest.raises(StorageKeyError, match="base64|bytes"):
        await SQLiteStore.open(database, storage_key="not a key")

    reopened = await SQLiteStore.open(database, storage_key=key)
    try:
        assert [m.text for m in await reopened.messages(OTHER)] == secret_texts(3)
    finally:
        await reopened.close()


async def test_rotating_the_master_key_rewraps_group_keys_only(tmp_path: Path) -> None:
    old = encode_key(new_key())
    store = await filled_store(tmp_path, storage_key=old)
    database = tmp_path / "condensa.sqlite3"
    before = sealed_rows(database, GROUP)
    from services.storage.crypto import MasterKey, decode_key

    fresh = encode_key(new_key())
    assert await store.rotate_master_key(MasterKey(decode_key(fresh))) == 2
    await store.close()
    assert sealed_rows(database, GROUP) == before, "messages are not re-encrypted"
    with pytest.raises(StorageKeyError):
        await SQLiteStore.open(database, storage_key=old)
    reopened = await SQLiteStore.open(database, storage_key=fresh)
    try:
        assert [m.text for m in await reopened.messages(GROUP)][:6] == secret_texts(1)
    finally:
        await reopened.close()


async def test_rows_an_older_version_stored_in_plain_are_sealed_on_open(tmp_path: Path) -> None:
    database = tmp_path / "condensa.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    for script in MIGRATIONS[:2]:
        connection.executescript(script)
    connection.execute("PRAGMA user_version = 2")
    texts = secret_texts(7)
    connection.executemany(
        "INSERT INTO group_messages VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(GROUP, i, 7, "Old Author", 1_700_000_000 + i, t, 0) for i, t in enumerate(texts)],
    )
    connection.commit()
    connection.close()
    assert texts[0].encode() in disk_bytes(tmp_path)

    store = await SQLiteStore.open(database)
    try:
        assert [m.text for m in await store.messages(GROUP)] == texts
        data = disk_bytes(tmp_path)
        assert not [t for t in texts if t.encode() in data]
        assert b"Old Author" not in data
    finally:
        await store.close()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_rotates_the_key_file_and_a_wrong_key_is_one_startup_line(tmp_path: Path) -> None:
    import asyncio

    async def fill() -> None:
        await (await filled_store(data_dir)).close()

    data_dir = tmp_path / "data"
    asyncio.run(fill())
    env = {"DATA_DIR": str(data_dir), "STORAGE_KEY": "", "TELEGRAM_BOT_TOKEN": ""}
    old_key = (data_dir / KEY_FILE_NAME).read_text()
    result = run_cli("storage", "rotate-key", env=env)
    assert result.returncode == 0, result.stderr
    assert "re-wrapped 2 group key(s)" in result.stdout
    assert (data_dir / KEY_FILE_NAME).read_text() != old_key
    assert stat.S_IMODE((data_dir / KEY_FILE_NAME).stat().st_mode) == 0o600

    wrong = base64.urlsafe_b64encode(os.urandom(32)).decode()
    bad = run_cli(
        env={**env, "STORAGE_KEY": wrong, "TELEGRAM_BOT_TOKEN": "123:abc"},
    )
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "not the key this database was encrypted with" in lines[0]
    assert wrong not in bad.stderr


async def test_optout_and_digest_off_through_the_bot_leave_nothing_readable(
    emulator: BotAPIEmulator,
    make_bot: BotFactory,
    group: dict[str, Any],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    runtime: BotRuntime = await make_bot(services=digest_services())
    data_dir = runtime.settings.data_dir
    database = runtime.settings.database_path
    await command(emulator, group, "Ana", "/digest_on")
    sent = await post_conversation(emulator, runtime, group, count=12)
    plain = [m["text"].encode() for m in sent]
    assert not [p for p in plain if p in disk_bytes(data_dir)]

    carla = 103
    gone = sealed_rows(database, GROUP_ID, user_id=carla)
    reply = await command(emulator, group, "Carla", "/optout")
    assert "deleted 4" in reply["text"]
    assert_absent(data_dir, gone)

    everything = sealed_rows(database, GROUP_ID)
    reply = await command(emulator, group, "Ana", "/digest_off")
    store = store_of(runtime)

    async def emptied() -> bool:
        return not await store.messages(GROUP_ID)

    await eventually(emptied)
    assert_absent(data_dir, everything)
    await runtime.stop()
    assert_absent(data_dir, [*gone, *everything])
    assert not [p for p in plain if p in disk_bytes(data_dir)]
