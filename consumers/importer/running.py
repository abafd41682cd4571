"""What every kind of import job shares while it runs: its heartbeat, stored every second, and the
count of jobs running."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import IO, Any, Protocol, TypeVar

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


class OneInFlight:
    """Publishing a batch while the next is read: at most one task in flight, each started once the
    one before it has ended (so figures are stored in order). Leaving the block by an error cancels
    the task in flight; its batch is then published again from the stored checkpoint."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def start(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await self.finish()
        except BaseException:
            work.close()  # never started: its batch is published again from the checkpoint
            raise
        self._task = asyncio.create_task(work)

    async def finish(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task

    async def __aenter__(self) -> OneInFlight:
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def position(stream: IO[bytes]) -> int:
    """Where a stream is read to (0 when it cannot tell): a file's progress."""
    try:
        return stream.tell()
    except OSError:
        return 0


def take(items: Iterator[T], count: int) -> list[T]:
    """The next ``count`` items (fewer at the end)."""
    return list(itertools.islice(items, count))
