"""What a store is: rows in, rows persisted once (by primary key), and the errors it raises."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, Protocol


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
