"""Per-chat state in SQL, the same code over SQLite (one file) and PostgreSQL (asyncpg).

Each public method runs as one transaction through a :class:`Database`: the SQLite one serializes
them on its single connection, the PostgreSQL one takes a pooled connection, and retries the
whole transaction when the connection is lost (a server restart), so callers carry on.
Queries are written once with ``?`` parameters in the SQL both engines share.

Stored message texts and author names are sealed per group (:mod:`services.storage.crypto`).
"""

from __future__ import annotations

from services.storage.archive import ArchiveStore
from services.storage.base import Database, Row, Tx, transaction
from services.storage.delivery import DeliveryStore
from services.storage.preferences import PreferencesStore
from services.storage.quotas import AccessStore

__all__ = ["Database", "Row", "SQLStore", "Tx", "transaction"]


class SQLStore(PreferencesStore, ArchiveStore, DeliveryStore, AccessStore):
    """The ``Store``, ``MessageArchive`` and ``DeliveryLedger`` protocols over a
    :class:`Database`; made by ``SQLiteStore.open`` or ``PostgresStore.open``. Each concern is
    its own part (``preferences``, ``archive``, ``delivery``, ``quotas``) over ``base``."""
