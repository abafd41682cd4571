"""PostgreSQL store (production): asyncpg; one transaction per batch, idempotent by primary key.

A batch is COPYed straight into ``records`` under a savepoint. Only when a key exists already (a
redelivery, a msgid posted twice) does it fail; it is then rolled back to the savepoint and written
through a temporary table with ``ON CONFLICT DO NOTHING`` instead. Batches that keep hitting
existing keys thus pay for two copies, the common case for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from ingest_core.store.base import Row, RowsRefused, StoreUnavailable
from ingest_core.store.migrations import MIGRATIONS

# Anything that means "the database is not there or not usable right now". InternalClientError is
# what a pooled connection left mid-operation by a server restart raises.
UNAVAILABLE = (
    OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, TimeoutError,
)  # fmt: skip
_LOCK_ID = 7_120_431  # advisory lock: one migrating process at a time
# Row's fields, in Row's order (a unit test holds them together): rows are COPYed as they are.
COLUMNS = ("dataset", "event_id", "msgid", "event", "topic", "partition", "offset", "received_at")


async def migrate_connection(conn: asyncpg.Connection) -> int:
    """Apply the pending migrations on ``conn``, one process at a time; returns the schema version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in MIGRATIONS:
            if m.version not in done:
                await conn.execute(m.postgres)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name
                )
    return max(done | {m.version for m in MIGRATIONS})


class PostgresStore:
    def __init__(self, url: str, *, pool_size: int = 4, command_timeout_s: float = 30.0) -> None:
        self._url = url
        self._pool_size = pool_size
        self._timeout = command_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    async def _pool_or_connect(self) -> asyncpg.Pool:
        # Several batches may be in flight: only one of them may create the pool.
        async with self._pool_lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._url,
                        min_size=1,
                        max_size=self._pool_size,
                        command_timeout=self._timeout,
                        timeout=5,
                    )
                except UNAVAILABLE as exc:
                    raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
            return self._pool

    async def migrate(self) -> int:
        pool = await self._pool_or_connect()
        try:
            async with pool.acquire() as conn:
                return await migrate_connection(conn)
        except UNAVAILABLE as exc:
            await self._discard_pool()
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc

    async def _discard_pool(self) -> None:
        # After a failure, no connection of the pool is trusted: the next write starts afresh.
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, *UNAVAILABLE):
                pool.terminate()

    async def insert_records(self, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        pool = await self._pool_or_connect()
        # A Row is a tuple of the columns in COLUMNS' order: COPYed as it is, no copy per row.
        records = rows
        try:
            async with pool.acquire() as conn, conn.transaction():
                try:
                    # The common case has no key twice: COPY straight into the table, under a savepoint.
                    # persisted_at is left to its DEFAULT now(), the transaction's start.
                    async with conn.transaction():
                        status = await conn.copy_records_to_table("records", records=records, columns=COLUMNS)
                except asyncpg.UniqueViolationError:
                    # Some key exists (a redelivery after a crash, a msgid posted twice) or repeats
                    # within the batch: the savepoint is gone, the slower idempotent path runs.
                    status = await self._insert_skipping_existing(conn, records)
        except asyncpg.DataError as exc:
            # SQLSTATE class 22 (or a value asyncpg cannot encode): the rows, not the database. The
            # connection is fine; the transaction was rolled back.
            raise RowsRefused(f"PostgreSQL: {exc}") from exc
        except UNAVAILABLE as exc:
            await self._discard_pool()
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        return int(status.rsplit(" ", 1)[-1])

    @staticmethod
    async def _insert_skipping_existing(
        conn: asyncpg.Connection, records: Sequence[tuple[object, ...]]
    ) -> str:
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS records_in (dataset TEXT, event_id TEXT, msgid TEXT,"
            ' event TEXT, topic TEXT, partition INT, "offset" BIGINT, received_at TIMESTAMPTZ)'
            " ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table("records_in", records=records)
        # A key twice within the batch is skipped by ON CONFLICT as well: DO NOTHING, unlike
        # DO UPDATE, accepts that in one statement.
        status: str = await conn.execute(
            'INSERT INTO records (dataset, event_id, msgid, event, topic, partition, "offset",'
            " received_at, persisted_at)"
            " SELECT dataset, event_id, msgid, event::jsonb, topic,"
            ' partition, "offset", received_at, now() FROM records_in'
            " ON CONFLICT (dataset, event_id) DO NOTHING"
        )
        return status

    async def ping(self) -> bool:
        try:
            pool = await self._pool_or_connect()
            await pool.fetchval("SELECT 1", timeout=2)
        except (StoreUnavailable, *UNAVAILABLE):
            return False
        return True

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
