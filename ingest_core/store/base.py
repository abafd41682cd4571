"""What a store is: rows in, rows persisted once (by primary key), and the errors it raises."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, Protocol
from urllib.parse import parse_qsl


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or refused the write; retrying later may succeed."""


class RowsRefused(Exception):
    """The database refused the rows' data itself (e.g. a character it cannot hold): retrying the same
    rows fails the same way. Nothing was written."""


class Row(NamedTuple):
    # A NamedTuple: one is built per record on the sink's hot path.
    dataset: str
    event_id: str
    msgid: str
    event_json: str  # the event, serialised as JSON
    topic: str
    partition: int
    offset: int
    received_at: datetime


class Store(Protocol):
    async def migrate(self) -> int:
        """Apply pending migrations; returns the schema version. Raises StoreUnavailable."""
        ...

    async def insert_records(self, rows: Sequence[Row]) -> int:
        """Insert in one transaction, ignoring rows whose (dataset, event_id) exists.

        Returns how many rows were new. Raises StoreUnavailable or RowsRefused (nothing was written).
        """
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


SQLITE_SYNCHRONOUS = ("full", "normal")


def sqlite_target(url: str) -> tuple[str, str]:
    """The path and the ``synchronous`` mode of ``sqlite:///<path>[?synchronous=full|normal]``
    (``full`` unless asked otherwise); raises ValueError naming what is wrong."""
    path, _, query = url.removeprefix("sqlite:///").partition("?")
    if not path:
        raise ValueError("STORE_URL: sqlite:/// needs a path, e.g. sqlite:///./data/ingest.db")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise ValueError(
            f"STORE_URL: malformed SQLite options {query!r} (e.g. ?synchronous=normal)"
        ) from None
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise ValueError(f"STORE_URL: unknown SQLite option {unknown[0]!r} (known: synchronous)")
    synchronous = options.get("synchronous", "full").lower()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"STORE_URL: synchronous={synchronous!r}: expected full or normal")
    return path, synchronous


def check_store_url(url: str) -> None:
    """Raises ValueError, naming what is wrong, for a STORE_URL no store can be opened with."""
    if url.startswith("sqlite:///"):
        sqlite_target(url)
    elif not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"STORE_URL: use sqlite:///<path> or postgresql://... (got {url!r})")


def open_store(url: str) -> Store:
    """A store for ``sqlite:///<path>`` or ``postgresql://...``; raises ValueError for other schemes."""
    if url.startswith("sqlite:///"):
        # Only the chosen backend is imported: a SQLite deployment never loads asyncpg.
        from ingest_core.store.sqlite import SqliteStore

        return SqliteStore(*sqlite_target(url))
    if url.startswith(("postgresql://", "postgres://")):
        from ingest_core.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unsupported store URL {url.split(':', 1)[0]!r}: use sqlite:///<path> or postgresql://..."
    )
