"""The store: the ``records`` table (a public contract for downstream readers) and its migrations.

``open_store(url)`` gives a ``Store`` for ``sqlite:///<path>`` or ``postgresql://...``. Every
service that uses the store applies the same versioned migrations at start (idempotent). The
backends import ``base`` only, never this package, so there is no import cycle.
"""

from __future__ import annotations

from ingest_core.store.base import Row, RowsRefused, Store, StoreUnavailable
from ingest_core.store.sqlite import SqliteStore, sqlite_target

__all__ = ["Row", "RowsRefused", "Store", "StoreUnavailable", "check_store_url", "open_store"]


def check_store_url(url: str) -> None:
    """Raises ValueError, naming what is wrong, for a STORE_URL no store can be opened with."""
    if url.startswith("sqlite:///"):
        sqlite_target(url)
    elif not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"STORE_URL: use sqlite:///<path> or postgresql://... (got {url!r})")


def open_store(url: str) -> Store:
    """A store for ``sqlite:///<path>`` or ``postgresql://...``; raises ValueError for other schemes."""
    if url.startswith("sqlite:///"):
        return SqliteStore(*sqlite_target(url))
    if url.startswith(("postgresql://", "postgres://")):
        # Imported when chosen: a SQLite deployment never loads asyncpg.
        from ingest_core.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unsupported store URL {url.split(':', 1)[0]!r}: use sqlite:///<path> or postgresql://..."
    )
