"""The gateway's hold on the job store: opened with the app, its migrations applied on first use
(a store that is down must not stop the ingestion API from starting), closed with the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from ingest_core.jobs import Job, JobStore, open_job_store


class Jobs:
    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._migrated = False
        self._lock = asyncio.Lock()

    async def _ready(self) -> JobStore:
        if not self._migrated:
            async with self._lock:
                if not self._migrated:
                    await self._store.migrate()  # raises StoreUnavailable; tried again next time
                    self._migrated = True
        return self._store

    async def create(self, job: Job) -> None:
        await (await self._ready()).create(job)

    async def get(self, job_id: str) -> Job | None:
        return await (await self._ready()).get(job_id)

    async def latest(self, kind: str, principal: str) -> Job | None:
        return await (await self._ready()).latest(kind, principal)

    async def update(self, job_id: str, **changes: Any) -> None:
        await (await self._ready()).update(job_id, **changes)

    async def update_if(self, job_id: str, expected: str, /, **changes: Any) -> bool:
        return await (await self._ready()).update_if(job_id, expected, **changes)

    async def close(self) -> None:
        await self._store.close()


def jobs_context(
    url: str, keep: Callable[[Jobs | None], None]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that opens the job store of ``url`` for the app's life, handing it to ``keep``."""

    async def context(_app: web.Application) -> AsyncIterator[None]:
        jobs = Jobs(open_job_store(url))
        keep(jobs)
        yield
        keep(None)
        await jobs.close()

    return context
