"""SQLite store (the default): WAL mode, one connection used from one dedicated thread.

SQLite has one writer at a time, so a single connection on a single thread is both the simplest and
the fastest arrangement; the event loop hands it work and awaits the result.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from ingest_core.store.base import Row, StoreUnavailable
from ingest_core.store.migrations import MIGRATIONS

T = TypeVar("T")

_INSERT = (
    'INSERT INTO records (dataset, event_id, msgid, event, topic, partition, "offset",'
    " received_at, persisted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (dataset, event_id) DO NOTHING"
)


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5)
                conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL is durable across process crashes (our failure model); FULL would
                # add an fsync per commit for power loss.
                conn.execute("PRAGMA synchronous=NORMAL")
                self._conn = conn
            return fn(self._conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite {self.path}: {exc}") from exc

    async def migrate(self) -> int:
        def apply(conn: sqlite3.Connection) -> int:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for m in MIGRATIONS:
                if m.version in done:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(m.sqlite)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (m.version, m.name, datetime.now(UTC).isoformat()),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            return max(done | {m.version for m in MIGRATIONS})

        return await self._run(apply)

    async def insert_records(self, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        now = datetime.now(UTC).isoformat()
        # Rows of one request share received_at: format each distinct value once.
        iso: dict[datetime, str] = {}
        params = [
            (r.dataset, r.event_id, r.msgid, r.event_json, r.topic, r.partition, r.offset,
             iso.get(r.received_at) or iso.setdefault(r.received_at, r.received_at.isoformat()), now)
            for r in rows
        ]  # fmt: skip

        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return conn.total_changes - before

        return await self._run(insert)

    async def ping(self) -> bool:
        try:
            await self._run(lambda conn: conn.execute("SELECT 1").fetchone())
        except StoreUnavailable:
            return False
        return True

    async def close(self) -> None:
        def close(conn: sqlite3.Connection) -> None:
            conn.close()

        if self._conn is not None:
            await self._run(close)
            self._conn = None
        self._executor.shutdown(wait=True)
