"""Read back what the sink wrote, from SQLite or PostgreSQL, straight from the database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import asyncpg

COLUMNS = [
    "dataset",
    "event_id",
    "msgid",
    "event",
    "topic",
    "partition",
    "offset",
    "received_at",
    "persisted_at",
]


async def fetch_rows(store_url: str) -> list[dict[str, Any]]:
    query = 'SELECT dataset, event_id, msgid, event, topic, partition, "offset", received_at, persisted_at FROM records'
    if store_url.startswith("sqlite:///"):

        def read() -> list[dict[str, Any]]:
            conn = sqlite3.connect(store_url.removeprefix("sqlite:///"))
            try:
                return [dict(zip(COLUMNS, row, strict=True)) for row in conn.execute(query)]
            except sqlite3.OperationalError:
                return []  # the sink has not created the table yet
            finally:
                conn.close()

        return await asyncio.to_thread(read)
    conn = await asyncpg.connect(store_url)
    try:
        return [dict(r) for r in await conn.fetch(query)]
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


async def count_rows(store_url: str) -> int:
    return len(await fetch_rows(store_url))


async def wait_for_rows(store_url: str, count: int, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Rows once there are at least ``count`` (or whatever is there when the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    rows = await fetch_rows(store_url)
    while len(rows) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        rows = await fetch_rows(store_url)
    return rows


async def wait_until_rows(store_url: str, at_least: int, timeout_s: float = 60.0) -> int:
    """The row count, once it is at least ``at_least``; fails the test if that takes over ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (seen := await count_rows(store_url)) < at_least:
        assert time.monotonic() < deadline, f"only {seen} of {at_least} rows after {timeout_s}s"
        await asyncio.sleep(0.05)
    return seen
