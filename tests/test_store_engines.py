"""One store, two engines: every operation behaves the same on SQLite and on a real PostgreSQL
(a throwaway database per test)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.core.types import ChatMessage, ChatPreferences, Length, Usage
from services.storage.crypto import StorageKeyError, encode_key, new_key
from services.storage.migrate import MIGRATIONS_DIR, applied, postgres_uri, sqlite_uri
from services.storage.postgres import PostgresStore, dollar_params
from services.storage.schema import MIGRATIONS, postgres_script, statements
from services.storage.sql import SQLStore
from services.storage.sqlite import SQLiteStore

GROUP = -1001234567890123  # past 2^31, like real supergroup ids
OTHER = -1009876543210
KEY = encode_key(new_key())


async def open_engine(kind: str, tmp_path: Path, dsn: str | None, key: str = KEY) -> SQLStore:
    if kind == "sqlite":
        return await SQLiteStore.open(tmp_path / "condensa.sqlite3", storage_key=key)
    assert dsn is not None
    return await PostgresStore.open(dsn, storage_key=key)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    return request.param, dsn


@pytest.fixture
async def store(engine: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[SQLStore]:
    opened = await open_engine(engine[0], tmp_path, engine[1])
    yield opened
    await opened.close()


def message(message_id: int, user_id: int, text: str, date: int, thread: int = 0) -> ChatMessage:
    return ChatMessage(GROUP, message_id, user_id, f"user{user_id}", date, text, thread)


def test_the_postgres_spelling_of_the_schema() -> None:
    script = postgres_script(MIGRATIONS[5])
    assert "update_id BIGINT PRIMARY KEY" in script
    assert "payload BYTEA NOT NULL" in script
    assert "(now()::text)" in postgres_script(MIGRATIONS[0])
    assert dollar_params("a = ? AND b IN (?, ?)") == "a = $1 AND b IN ($2, $3)"


async def test_preferences_and_digest_settings(store: SQLStore) -> None:
    assert await store.get_preferences(GROUP) == ChatPreferences()
    await store.set_preferences(GROUP, ChatPreferences("lexrank", Length.SHORT, "es"))
    await store.set_preferences(GROUP, ChatPreferences("lsa", Length.LONG, "en"))
    assert await store.get_preferences(GROUP) == ChatPreferences("lsa", Length.LONG, "en")
    await store.set_digest_enabled(GROUP, True)
    await store.set_schedule(GROUP, "09:30", "Europe/Madrid")
    await store.set_schedule(OTHER, "10:00", "UTC")  # not enabled: not scheduled
    scheduled = await store.scheduled_chats()
    assert [(s.chat_id, s.schedule, s.timezone) for s in scheduled] == [
        (GROUP, "09:30", "Europe/Madrid")
    ]
    await store.mark_digest(GROUP, 1_700_000_100)
    await store.mark_digest(GROUP, 1_700_000_050)  # never moves back
    settings = await store.digest_settings(GROUP)
    assert settings.enabled and settings.last_digest_date == 1_700_000_100


async def test_messages_windows_opt_out_and_forgetting(store: SQLStore) -> None:
    await store.set_digest_enabled(GROUP, True)
    saved = await store.save_messages(
        [
            message(i, 100 + i % 3, f"message número {i} ✓", 1_700_000_000 + i, i % 2)
            for i in range(1, 21)
        ]
    )
    assert saved == 20
    await store.save_messages([message(5, 105, "edited five", 1_700_000_005, 1)])
    window = await store.messages(GROUP)
    assert [m.message_id for m in window] == list(range(1, 21))
    assert window[4].text == "edited five" and window[0].text == "message número 1 ✓"
    assert [m.message_id for m in await store.messages(GROUP, last=3)] == [18, 19, 20]
    assert [m.message_id for m in await store.messages(GROUP, since=1_700_000_017)] == [18, 19, 20]
    assert [m.message_id for m in await store.messages(GROUP, first_id=4, last_id=6)] == [4, 5, 6]
    assert all(m.thread_id == 1 for m in await store.messages(GROUP, thread_id=1))
    assert await store.set_opt_out(GROUP, 101, True) == 7
    assert await store.save_messages([message(30, 101, "opted out", 1_700_000_030)]) == 0
    await store.set_opt_out(GROUP, 101, False)
    assert await store.forget_user(GROUP, 102) == 7
    assert await store.purge_stored_before(10**10) == 6
    assert await store.messages(GROUP) == []
    await store.save_messages([message(40, 100, "again", 1_700_000_040)])
    await store.forget_chat(GROUP)
    assert await store.messages(GROUP) == []
    assert not (await store.digest_settings(GROUP)).enabled


async def test_inbox_and_outbox(store: SQLStore) -> None:
    new = await store.inbox_add([(1, GROUP, '{"update_id": 1}'), (2, 55, '{"update_id": 2}')])
    assert new == [1, 2]
    assert await store.inbox_add([(1, GROUP, '{"update_id": 1}')]) == []  # a duplicate
    assert await store.inbox_pending() == [(1, '{"update_id": 1}'), (2, '{"update_id": 2}')]
    await store.inbox_done([1])
    assert await store.inbox_pending() == [(2, '{"update_id": 2}')]
    assert await store.sent_result(2, 0) is None
    await store.record_sent(2, 0, 55, '{"message_id": 9}')
    await store.record_sent(2, 0, 55, '{"message_id": 10}')
    assert await store.sent_result(2, 0) == '{"message_id": 10}'
    await store.inbox_done([2])
    assert await store.purge_delivery(10**10) == 2
    assert await store.sent_result(2, 0) is None
    # A worker fed by the Redis queue keeps no inbox row: its sends are forgotten by age.
    await store.record_sent(99, 0, 55, '{"message_id": 11}')
    assert await store.purge_delivery(int(time.time()) - 60) == 0
    assert await store.sent_result(99, 0) == '{"message_id": 11}'
    assert await store.purge_delivery(int(time.time()) + 60) == 1
    assert await store.sent_result(99, 0) is None


async def test_access_quotas_usage_and_audit(store: SQLStore) -> None:
    await store.set_access_rule("@ana", True, by=1)
    await store.set_access_rule("42", False, by=1)
    assert await store.access_rules(["@ana", "42", "7"]) == {"@ana": True, "42": False}
    await store.set_quota_override(42, 5, by=1)
    assert await store.quota_override(42) == 5 and await store.quota_override(43) is None
    assert [entry[2] for entry in await store.audit_log()] == ["quota", "deny", "allow"]
    await store.add_usage("2026-12-01", "user", 42, Usage(1, 100, 10, 0))
    await store.add_usage("2026-12-01", "user", 42, Usage(2, 50, 5, 1))
    await store.add_usage("2026-12-01", "chat", GROUP, Usage(3, 150, 15, 0))
    assert await store.usage("2026-12-01", "user", 42) == Usage(3, 150, 15, 1)
    for seconds in (0.5, 1.0, 2.0):
        await store.record_answer_time("2026-12-01", seconds)
    assert await store.first_notice_today(42, "2026-12-01")
    assert not await store.first_notice_today(42, "2026-12-01")
    stats = await store.usage_stats(["2026-12-01", "2026-11-30"])
    assert (stats.users, stats.chats, stats.requests, stats.tokens, stats.refused) == (
        1,
        1,
        3,
        15,
        1,
    )
    assert stats.answer_p50 == 1.0 and stats.top_users == [(42, 3)]
    # An update re-run after a crash (or a retried transaction) counts once per key and scope.
    for _ in range(2):
        await store.add_usage("2026-12-02", "user", 42, Usage(1, 10, 0, 0), once_key="77:request")
        await store.add_usage(
            "2026-12-02", "chat", GROUP, Usage(1, 10, 0, 0), once_key="77:request"
        )
        await store.add_usage("2026-12-02", "user", 42, Usage(0, 0, 9, 0), once_key="77:tokens")
    assert await store.usage("2026-12-02", "user", 42) == Usage(1, 10, 9, 0)
    assert await store.usage("2026-12-02", "chat", GROUP) == Usage(1, 10, 0, 0)


async def test_reopening_needs_the_same_key_and_keeps_everything(
    engine: tuple[str, str | None], tmp_path: Path
) -> None:
    store = await open_engine(engine[0], tmp_path, engine[1])
    await store.set_digest_enabled(GROUP, True)
    await store.save_messages([message(1, 100, "kept across restarts", 1_700_000_001)])
    await store.close()
    with pytest.raises(StorageKeyError):
        await open_engine(engine[0], tmp_path, engine[1], key=encode_key(new_key()))
    store = await open_engine(engine[0], tmp_path, engine[1])
    assert [m.text for m in await store.messages(GROUP)] == ["kept across restarts"]
    await store.close()


async def test_postgres_workers_starting_together_migrate_once_and_share_keys(
    postgres_dsn: str,
) -> None:
    stores = await asyncio.gather(
        *(PostgresStore.open(postgres_dsn, storage_key=KEY) for _ in range(4))
    )
    try:
        connection = await asyncpg.connect(postgres_dsn)
        try:
            # yoyo applied each migration once (four of them racing would fail or log twice).
            assert await connection.fetchval("SELECT count(*) FROM _yoyo_migration") == len(
                MIGRATIONS
            )
            applies = await connection.fetchval(
                "SELECT count(*) FROM _yoyo_log WHERE operation = 'apply'"
            )
            assert applies == len(MIGRATIONS)
            # Text is sealed in the database, like in the SQLite file.
            await stores[0].set_digest_enabled(GROUP, True)
            # Two workers storing the first messages of a group at once agree on its key.
            await asyncio.gather(
                stores[1].save_messages([message(1, 100, "from worker one", 1_700_000_001)]),
                stores[2].save_messages([message(2, 100, "from worker two", 1_700_000_002)]),
            )
            raw = await connection.fetch("SELECT text FROM group_messages")
            assert all(b"worker" not in bytes(row["text"]) for row in raw)
            assert await connection.fetchval("SELECT count(*) FROM group_keys") == 1
        finally:
            await connection.close()
        for each in stores:
            assert [m.text for m in await each.messages(GROUP)] == [
                "from worker one",
                "from worker two",
            ]
    finally:
        for each in stores:
            await each.close()


def test_every_migration_has_its_yoyo_file_in_order() -> None:
    files = sorted(MIGRATIONS_DIR.glob("[0-9]*.py"))
    assert len(files) == len(MIGRATIONS)
    for number, path in enumerate(files, start=1):
        assert path.name.startswith(f"{number:04d}_")
        assert f"schema_step({number})" in path.read_text()


async def test_a_database_from_before_yoyo_is_adopted_and_carried_on(
    engine: tuple[str, str | None], tmp_path: Path
) -> None:
    """The first five migrations made by the old counter (PRAGMA user_version / schema_version),
    a row in them: opening marks those five applied, runs the rest, keeps the row."""
    kind, dsn = engine
    if kind == "sqlite":
        import sqlite3

        path = tmp_path / "condensa.sqlite3"
        uri = sqlite_uri(path)
        with sqlite3.connect(path) as connection:
            for script in MIGRATIONS[:5]:
                connection.executescript(script)
            connection.execute("INSERT INTO chat_preferences (chat_id, method) VALUES (7, 'lsa')")
            connection.execute("PRAGMA user_version = 5")
    else:
        assert dsn is not None
        uri = postgres_uri(dsn)
        connection = await asyncpg.connect(dsn)
        try:
            for script in MIGRATIONS[:5]:
                await connection.execute(postgres_script(script))
            await connection.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
            await connection.execute("INSERT INTO schema_version VALUES (5)")
            await connection.execute(
                "INSERT INTO chat_preferences (chat_id, method) VALUES (7, 'lsa')"
            )
        finally:
            await connection.close()
    store = await open_engine(kind, tmp_path, dsn)
    try:
        assert (await store.get_preferences(7)).method == "lsa"
        assert applied(uri) == sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))
    finally:
        await store.close()


async def test_a_migrator_killed_holding_yoyos_lock_does_not_stop_the_next_start(
    engine: tuple[str, str | None], tmp_path: Path
) -> None:
    kind, dsn = engine
    first = await open_engine(kind, tmp_path, dsn)
    await first.close()
    # A migrator killed -9 inside yoyo's lock leaves its row behind.
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(tmp_path / "condensa.sqlite3") as connection:
            connection.execute(
                "INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, '2026-01-01', 4242)"
            )
    else:
        assert dsn is not None
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(
                "INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 4242)"
            )
        finally:
            await connection.close()
    started = time.monotonic()
    again = await open_engine(kind, tmp_path, dsn)
    try:
        assert time.monotonic() - started < 8, "not waiting out yoyo's 10 s lock timeout"
        assert await again.get_preferences(GROUP) == ChatPreferences()
    finally:
        await again.close()


def test_statements_split_a_script() -> None:
    assert statements("CREATE TABLE a (x INTEGER);\n CREATE INDEX i ON a (x);\n") == [
        "CREATE TABLE a (x INTEGER)",
        "CREATE INDEX i ON a (x)",
    ]


async def test_after_a_forget_through_one_worker_no_worker_uses_the_deleted_key(
    postgres_dsn: str,
) -> None:
    one, two = await asyncio.gather(
        PostgresStore.open(postgres_dsn, storage_key=KEY),
        PostgresStore.open(postgres_dsn, storage_key=KEY),
    )
    try:
        await one.save_messages([message(1, 100, "before the forget", 1_700_000_001)])
        assert [m.text for m in await one.messages(GROUP)] == ["before the forget"]  # key held
        await two.forget_chat(GROUP)  # through the other worker: the key and messages go
        await one.save_messages([message(2, 100, "after the forget", 1_700_000_002)])
        # Sealed under a new key that both workers read; nothing under the deleted one.
        assert [m.text for m in await two.messages(GROUP)] == ["after the forget"]
        assert [m.text for m in await one.messages(GROUP)] == ["after the forget"]
    finally:
        await one.close()
        await two.close()
