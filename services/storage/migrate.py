"""Schema migrations through yoyo-migrations, for both engines.

The migrations are ``services/storage/migrations/*.py`` (each applies one script of
``services.storage.schema``). yoyo keeps what it applied in ``_yoyo_migration`` and
``_yoyo_log`` and runs under its lock table; we hold a lock of our own around it (PostgreSQL: a
session advisory lock, released when the connection goes; SQLite: ``flock`` on a file beside
the database), so a migrator killed half-way never leaves a lock that stops the next start:
under our lock, a lock row of yoyo's is stale and is cleared.

A database made before yoyo (``PRAGMA user_version`` / the ``schema_version`` table) is
adopted: the migrations it had are marked applied, once, and the rest run.

Synchronous (yoyo uses DB-API drivers): the stores call :func:`upgrade` in a thread at start.
An operator can run the same with yoyo's own command from the repository root, e.g.
``PYTHONPATH=. yoyo list --database sqlite:///data/condensa.sqlite3 services/storage/migrations``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from yoyo import get_backend, read_migrations

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x436F6E64656E7361  # "Condensa": PostgreSQL's advisory lock for migrations
_SCHEME = re.compile(r"^postgres(ql)?://", re.IGNORECASE)


def sqlite_uri(path: Path) -> str:
    """yoyo's URI for the SQLite file at ``path``."""
    return f"sqlite:///{path.resolve()}"


def postgres_uri(dsn: str) -> str:
    """yoyo's URI for an asyncpg DSN (``postgresql://…``): the same, through psycopg 3."""
    if not _SCHEME.match(dsn):
        raise ValueError("DATABASE_URL must start with postgresql://")
    return _SCHEME.sub("postgresql+psycopg://", dsn)


def upgrade(uri: str) -> list[str]:
    """Bring the database at ``uri`` up to date; returns the ids of the migrations applied."""
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with get_backend(uri) as backend, _exclusive(backend, uri):
        with contextlib.suppress(Exception):
            backend.break_lock()  # under our lock, any lock row is a dead migrator's
        with backend.lock():
            _adopt(backend, migrations)
            pending = backend.to_apply(migrations)
            for migration in pending:
                logger.info("applying schema migration %s", migration.id)
            backend.apply_migrations(pending)
            if uri.startswith("sqlite:"):
                # Kept for tools that read it (and older versions, which then do nothing).
                backend.execute(f"PRAGMA user_version = {len(migrations)}")
        return [migration.id for migration in pending]


def applied(uri: str) -> list[str]:
    """The ids of the migrations yoyo has applied to the database at ``uri``."""
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with get_backend(uri) as backend:
        return [m.id for m in migrations if backend.is_applied(m)]


@contextlib.contextmanager
def _exclusive(backend: Any, uri: str) -> Iterator[None]:
    if not uri.startswith("sqlite:"):
        cursor = backend.connection.cursor()
        cursor.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            yield
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        return
    path = Path(uri.removeprefix("sqlite:///")).with_suffix(".migrating")
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _adopt(backend: Any, migrations: Any) -> None:
    """Mark applied what a database made before yoyo already has."""
    if backend.get_applied_migration_hashes():
        return
    version = _legacy_version(backend)
    if version:
        logger.info("adopting a schema at version %d into yoyo-migrations", version)
        backend.mark_migrations(migrations[:version])


def _legacy_version(backend: Any) -> int:
    if backend.uri.scheme.startswith("sqlite"):
        row = backend.execute("PRAGMA user_version").fetchone()
        return int(row[0]) if row else 0
    if "schema_version" not in backend.list_tables():
        return 0
    row = backend.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0
