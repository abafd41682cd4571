"""Import jobs: one model for every kind of import, stored through ``STORE_URL`` (the ``jobs`` table,
created by the store's migrations) by the gateway, which creates and reads them, and the import
worker, which updates them.

A job has an id, a kind, a status, the target it writes (source, type or entity), the principal
that made it, progress (0-100) and counts, its first ``MAX_ERRORS`` row or line errors, the
request's metadata, a checkpoint (the last row or line published) and its timestamps. Progress and
the checkpoint never go backwards: an update carrying a lower value keeps the stored one.
"""

# Statements are put together from column names only (Job's fields, updates checked against
# _UPDATABLE); every value is bound as a parameter.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ingest_core.store.base import StoreUnavailable

MAX_ERRORS = 1000
# Kinds of job: each has its route in the gateway and, when run by the import worker, its runner.
SOURCE_KIND = "source-import"
JSONL_KIND = "jsonl-import"
ENTITY_KIND = "entity-import"
OPERATION_KIND = "import-operation"
# Columns an update may set; progress and checkpoint only ever grow.
_UPDATABLE = frozenset(
    {"status", "progress", "total", "imported", "failed", "errors", "request", "checkpoint", "started_at",
     "ended_at", "heartbeat_at"}
)  # fmt: skip
_MONOTONIC = frozenset({"progress", "checkpoint"})
_JSON = frozenset({"errors", "request"})
_TIMES = frozenset({"created_at", "updated_at", "started_at", "ended_at", "heartbeat_at"})


def now() -> datetime:
    return datetime.now(UTC)


def iso_ms(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and ``Z``, as the references write times."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class Job:
    id: str
    kind: str
    status: str
    principal: str
    target: str | None = None
    progress: int = 0
    total: int = 0
    imported: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)
    checkpoint: int = 0
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None


COLUMNS = tuple(f.name for f in fields(Job))


class JobStore(Protocol):
    async def migrate(self) -> None:
        """Apply the store's pending migrations; raises StoreUnavailable."""
        ...

    async def create(self, job: Job) -> None:
        """Store a new job; raises StoreUnavailable."""
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job, or None when there is none of that id; raises StoreUnavailable."""
        ...

    async def latest(self, kind: str, principal: str) -> Job | None:
        """The principal's job of ``kind`` made last, or None; raises StoreUnavailable."""
        ...

    async def update(self, job_id: str, **changes: Any) -> None:
        """Set ``changes`` (and ``updated_at``); raises StoreUnavailable."""
        ...

    async def update_if(self, job_id: str, expected: str, /, **changes: Any) -> bool:
        """``update`` only while the job's status is ``expected`` (atomic); whether it was."""
        ...

    async def close(self) -> None: ...


def _checked(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
    out = dict(changes)
    if "errors" in out:
        out["errors"] = out["errors"][:MAX_ERRORS]
    out["updated_at"] = now()
    return out


class SqliteJobStore:
    """One connection, used from a worker thread at a time (jobs are few; rows are the sink's)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=10, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._conn = conn
        return self._conn

    async def _run(self, fn: Any, *args: Any) -> Any:
        def call() -> Any:
            with self._lock:
                try:
                    return fn(self._connection(), *args)
                except sqlite3.OperationalError as exc:
                    raise StoreUnavailable(f"SQLite {self._path}: {exc}") from exc

        return await asyncio.to_thread(call)

    @staticmethod
    def _encode(name: str, value: Any) -> Any:
        if name in _JSON:
            return json.dumps(value)
        if name in _TIMES and value is not None:
            return value.isoformat()
        return value

    @staticmethod
    def _decode(row: sqlite3.Row | tuple[Any, ...]) -> Job:
        values = dict(zip(COLUMNS, row, strict=True))
        for name in _JSON:
            values[name] = json.loads(values[name])
        for name in _TIMES:
            if values[name] is not None:
                values[name] = datetime.fromisoformat(values[name])
        return Job(**values)

    async def migrate(self) -> None:
        from ingest_core.store.sqlite import migrate_connection

        await self._run(migrate_connection)

    async def create(self, job: Job) -> None:
        values = [self._encode(name, getattr(job, name)) for name in COLUMNS]
        sql = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        await self._run(lambda conn: conn.execute(sql, values))

    async def get(self, job_id: str) -> Job | None:
        sql = f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = ?"
        row = await self._run(lambda conn: conn.execute(sql, (job_id,)).fetchone())
        return None if row is None else self._decode(row)

    async def latest(self, kind: str, principal: str) -> Job | None:
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE principal = ? AND kind = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1"
        )
        row = await self._run(lambda conn: conn.execute(sql, (principal, kind)).fetchone())
        return None if row is None else self._decode(row)

    async def update(self, job_id: str, **changes: Any) -> None:
        await self._update(job_id, None, changes)

    async def update_if(self, job_id: str, expected: str, /, **changes: Any) -> bool:
        return await self._update(job_id, expected, changes)

    async def _update(self, job_id: str, status: str | None, changes: Mapping[str, Any]) -> bool:
        values = _checked(changes)
        sets = [f"{n} = MAX({n}, ?)" if n in _MONOTONIC else f"{n} = ?" for n in values]
        sql = f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?" + (
            "" if status is None else " AND status = ?"
        )
        params = (
            [self._encode(n, v) for n, v in values.items()] + [job_id] + ([] if status is None else [status])
        )
        changed: int = await self._run(lambda conn: conn.execute(sql, params).rowcount)
        return changed == 1

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PostgresJobStore:
    def __init__(self, url: str) -> None:
        self._url = url
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()

    async def _pool_or_connect(self) -> Any:
        import asyncpg

        from ingest_core.store.postgres import UNAVAILABLE

        async with self._pool_lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=2, timeout=5)
                except UNAVAILABLE as exc:
                    raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
            return self._pool

    async def _run(self, fn: Any) -> Any:
        # The sink's list: InternalClientError is what a pooled connection left mid-operation by a
        # server restart raises (it stopped the import worker before it was here).
        from ingest_core.store.postgres import UNAVAILABLE

        pool = await self._pool_or_connect()
        try:
            async with pool.acquire() as conn:
                return await fn(conn)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc

    @staticmethod
    def _encode(name: str, value: Any) -> Any:
        return json.dumps(value) if name in _JSON else value

    async def migrate(self) -> None:
        from ingest_core.store.postgres import migrate_connection

        await self._run(migrate_connection)

    async def create(self, job: Job) -> None:
        values = [self._encode(name, getattr(job, name)) for name in COLUMNS]
        marks = ", ".join(f"${i}" + ("::jsonb" if n in _JSON else "") for i, n in enumerate(COLUMNS, 1))
        sql = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({marks})"
        await self._run(lambda conn: conn.execute(sql, *values))

    async def get(self, job_id: str) -> Job | None:
        return await self._one("id = $1", job_id)

    async def latest(self, kind: str, principal: str) -> Job | None:
        return await self._one(
            "principal = $1 AND kind = $2 ORDER BY created_at DESC, id DESC LIMIT 1", principal, kind
        )

    async def _one(self, where: str, *params: Any) -> Job | None:
        columns = ", ".join(n + ("::text" if n in _JSON else "") for n in COLUMNS)
        sql = f"SELECT {columns} FROM jobs WHERE {where}"
        row = await self._run(lambda conn: conn.fetchrow(sql, *params))
        if row is None:
            return None
        values = dict(zip(COLUMNS, row.values(), strict=True))
        for name in _JSON:
            values[name] = json.loads(values[name])
        return Job(**values)

    async def update(self, job_id: str, **changes: Any) -> None:
        await self._update(job_id, None, changes)

    async def update_if(self, job_id: str, expected: str, /, **changes: Any) -> bool:
        return await self._update(job_id, expected, changes)

    async def _update(self, job_id: str, status: str | None, changes: Mapping[str, Any]) -> bool:
        values = _checked(changes)
        sets = []
        for i, n in enumerate(values, 1):
            mark = f"${i}" + ("::jsonb" if n in _JSON else "")
            sets.append(f"{n} = GREATEST({n}, {mark})" if n in _MONOTONIC else f"{n} = {mark}")
        where = f"id = ${len(values) + 1}" + ("" if status is None else f" AND status = ${len(values) + 2}")
        sql = f"UPDATE jobs SET {', '.join(sets)} WHERE {where}"
        params = (
            [self._encode(n, v) for n, v in values.items()] + [job_id] + ([] if status is None else [status])
        )
        done: str = await self._run(lambda conn: conn.execute(sql, *params))
        return done == "UPDATE 1"

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def open_job_store(url: str) -> JobStore:
    """The job store of ``STORE_URL``: ``sqlite:///<path>`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        from ingest_core.store.sqlite import sqlite_target

        return SqliteJobStore(sqlite_target(url)[0])
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresJobStore(url)
    raise ValueError(f"STORE_URL: use sqlite:///<path> or postgresql://... (got {url!r})")
