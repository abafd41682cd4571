"""The PostgreSQL store COPYs rows as they are: Row's fields must be its columns, in order."""

from __future__ import annotations

from ingest_core.store import Row
from ingest_core.store.postgres import COLUMNS


def test_rows_are_tuples_of_the_copied_columns_in_order() -> None:
    renamed = {"event_json": "event"}
    assert tuple(renamed.get(f, f) for f in Row._fields) == COLUMNS
