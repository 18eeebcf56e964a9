"""The one schema, as migrations, for SQLite and PostgreSQL.

The scripts are written once, in SQLite's spelling; :func:`postgres_script` gives PostgreSQL's
(64-bit integers, ``BYTEA``, ``DOUBLE PRECISION``). yoyo-migrations applies them: each has a
file in ``services/storage/migrations`` (its yoyo id) whose step is :func:`schema_step`, and
yoyo records what it applied, when, under its lock (``services.storage.migrate``).

A new migration: append its script here and add the next numbered file there.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

# Each entry moves the schema one version up.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chat_preferences (
        chat_id INTEGER PRIMARY KEY,
        method TEXT NOT NULL DEFAULT '',
        length TEXT NOT NULL DEFAULT 'medium',
        language TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL DEFAULT (datetime('now'))
    );
    """,
    """
    CREATE TABLE digest_chats (
        chat_id INTEGER PRIMARY KEY,
        enabled INTEGER NOT NULL DEFAULT 0,
        schedule TEXT NOT NULL DEFAULT '',
        timezone TEXT NOT NULL DEFAULT '',
        last_digest_date INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE group_messages (
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        author TEXT NOT NULL,
        date INTEGER NOT NULL,
        text TEXT NOT NULL,
        stored_at INTEGER NOT NULL,
        PRIMARY KEY (chat_id, message_id)
    );
    CREATE INDEX group_messages_by_date ON group_messages (chat_id, date);
    CREATE INDEX group_messages_by_user ON group_messages (chat_id, user_id);
    CREATE INDEX group_messages_by_stored ON group_messages (stored_at);
    CREATE TABLE digest_opt_outs (
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (chat_id, user_id)
    );
    """,
    # group_messages.text and .author hold AES-GCM blobs from here on (see crypto.py);
    # rows written in plain text by older versions are sealed when the store opens.
    """
    CREATE TABLE group_keys (
        chat_id INTEGER PRIMARY KEY,
        wrapped BLOB NOT NULL
    );
    CREATE TABLE storage_meta (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    """,
    # Access, quotas and the operator's view: counts and ids only, never message text.
    """
    CREATE TABLE access_rules (
        subject TEXT PRIMARY KEY,
        allowed INTEGER NOT NULL
    );
    CREATE TABLE quota_overrides (
        user_id INTEGER PRIMARY KEY,
        requests INTEGER NOT NULL
    );
    CREATE TABLE usage_daily (
        day TEXT NOT NULL,
        scope TEXT NOT NULL,
        subject INTEGER NOT NULL,
        requests INTEGER NOT NULL DEFAULT 0,
        chars INTEGER NOT NULL DEFAULT 0,
        tokens INTEGER NOT NULL DEFAULT 0,
        refused INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, scope, subject)
    );
    CREATE TABLE answer_times (day TEXT NOT NULL, seconds REAL NOT NULL);
    CREATE INDEX answer_times_by_day ON answer_times (day);
    CREATE TABLE access_notices (
        chat_id INTEGER NOT NULL,
        day TEXT NOT NULL,
        PRIMARY KEY (chat_id, day)
    );
    CREATE TABLE admin_audit (
        at INTEGER NOT NULL,
        admin_id INTEGER NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        value TEXT NOT NULL
    );
    """,
    # Forum supergroups: the topic thread a message belongs to (0 outside forums).
    """
    ALTER TABLE group_messages ADD COLUMN thread_id INTEGER NOT NULL DEFAULT 0;
    """,
    # Durable intake: each update is kept (sealed with its chat's key) before Telegram is told
    # it arrived, until it was handled; and what was sent for it, so a re-run sends nothing twice.
    """
    CREATE TABLE inbox (
        update_id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        payload BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX inbox_pending ON inbox (done, update_id);
    CREATE TABLE outbox (
        update_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        result BLOB NOT NULL,
        PRIMARY KEY (update_id, seq)
    );
    """,
    # When a send was recorded: workers fed by the Redis queue keep no inbox rows, so what they
    # sent is forgotten by age.
    """
    ALTER TABLE outbox ADD COLUMN recorded_at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX outbox_by_age ON outbox (recorded_at);
    """,
    # Usage counted once per update: a re-run after a crash, or a transaction retried after
    # its COMMIT was lost, finds its key and adds nothing.
    """
    CREATE TABLE usage_counted (
        usage_key TEXT NOT NULL,
        scope TEXT NOT NULL,
        subject INTEGER NOT NULL,
        counted_at INTEGER NOT NULL,
        PRIMARY KEY (usage_key, scope, subject)
    );
    CREATE INDEX usage_counted_by_age ON usage_counted (counted_at);
    """,
    # What a kept message replies to (its id and author), for a member's catch-up: replies
    # to them come first.
    """
    ALTER TABLE group_messages ADD COLUMN reply_to INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE group_messages ADD COLUMN reply_to_user INTEGER NOT NULL DEFAULT 0;
    """,
    # Members who asked for an automatic catch-up (/catchup auto), and when they last wrote.
    """
    CREATE TABLE catchup_auto (
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        PRIMARY KEY (chat_id, user_id)
    );
    """,
    # What the group made of a kept message: how many reactions it has (counts only, never
    # who reacted), whether it was pinned, whether it forwarded a document in. They rank it in
    # digests and catch-ups.
    """
    ALTER TABLE group_messages ADD COLUMN reactions INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE group_messages ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE group_messages ADD COLUMN shared_document INTEGER NOT NULL DEFAULT 0;
    """,
)

_POSTGRES_SPELLING = (
    # Telegram ids pass 2^31 (group ids are -100… thirteen-digit numbers).
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\(datetime\('now'\)\)"), "(now()::text)"),
    # Message text and author names are sealed bytes; SQLite's TEXT columns hold them as
    # blobs (and held plain text before version 3), PostgreSQL needs the type said.
    (re.compile(r"\b(author|text) TEXT NOT NULL"), r"\1 BYTEA NOT NULL"),
)


def postgres_script(script: str) -> str:
    """A migration in PostgreSQL's spelling."""
    for pattern, replacement in _POSTGRES_SPELLING:
        script = pattern.sub(replacement, script)
    return script


def statements(script: str) -> list[str]:
    """A script's statements (none of ours has a ``;`` inside a literal)."""
    return [part.strip() for part in script.split(";") if part.strip()]


def schema_step(number: int) -> Any:
    """The yoyo step that applies migration ``number`` (from 1) in the connection's spelling."""
    from yoyo import step

    script = MIGRATIONS[number - 1]

    def apply(connection: Any) -> None:
        if not isinstance(connection, sqlite3.Connection):
            cursor = connection.cursor()
            cursor.execute(postgres_script(script))
            return
        cursor = connection.cursor()
        try:
            for statement in statements(script):
                cursor.execute(statement)
        finally:
            cursor.close()

    return step(apply)
