"""What every kind of import job shares while it runs: its heartbeat, stored every second, and the
count of jobs running."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Protocol, TypeVar

from consumers.importer.metrics import ImporterMetrics
from ingest_core.jobs import Job, JobStore, now

HEARTBEAT_S = 1.0
T = TypeVar("T")


class JobRunner(Protocol):
    async def run(self, job: Job) -> None:
        """Run ``job`` from its checkpoint to its end. Raises StoreUnavailable and the publisher's
        errors (the job is then resumed from its checkpoint when tried again)."""
        ...


@contextlib.asynccontextmanager
async def heartbeat(jobs: JobStore, job_id: str, metrics: ImporterMetrics) -> AsyncIterator[None]:
    """The job's heartbeat stored every ``HEARTBEAT_S`` while the block runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await jobs.update(job_id, heartbeat_at=now())

    task = asyncio.create_task(beat())
    metrics.running.inc()
    try:
        yield
    finally:
        metrics.running.dec()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def take(items: Iterator[T], count: int) -> list[T]:
    """The next ``count`` items (fewer at the end)."""
    return list(itertools.islice(items, count))
