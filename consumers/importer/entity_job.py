"""One entity file import (CSV or XLSX), run to its end: the file's rows read from the job's
checkpoint, each mapped, coerced and checked into a record of the entity (``ingest_core.entity_import``),
good rows published (and acknowledged by Kafka) a batch at a time, then the job's counts, errors,
progress and checkpoint stored, so that a worker stopped at any moment resumes where the stored
checkpoint says and no row is published as a second row.

Statuses: ``QUEUED`` -> ``RUNNING`` -> ``COMPLETED`` (bad rows are reported, the rest imported) or
``FAILED`` (the file cannot be read at all, or no row could be imported). A row whose mapped cells
are all empty is no row: it is neither imported nor counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from consumers.importer.metrics import ImporterMetrics
from consumers.importer.running import OneInFlight, heartbeat, position, take
from ingest_core.blobs import BlobStore
from ingest_core.entity_import import EntityRequest, RowMapper
from ingest_core.jobs import MAX_ERRORS, Job, JobStore, now
from ingest_core.publish import Publisher
from ingest_core.record import OutRecord
from ingest_core.registry import Registry
from ingest_core.tabular import XLSX_IN_MEMORY_MAX_BYTES, csv_rows, is_header, xlsx_rows

log = logging.getLogger(__name__)

BATCH_ROWS = 5_000
FINISHED = frozenset({"COMPLETED", "FAILED"})

Rows = Iterator[tuple[int, list[Any]]]


@dataclass(slots=True)
class _Batch:
    records: list[OutRecord] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)
    last: int = 0  # the batch's last row number: the checkpoint once it is stored


class EntityJob:
    def __init__(
        self, jobs: JobStore, blobs: BlobStore, registry: Registry, publisher: Publisher,
        keep_uploads: bool, metrics: ImporterMetrics,
        xlsx_in_memory_max_bytes: int = XLSX_IN_MEMORY_MAX_BYTES,
    ) -> None:  # fmt: skip
        self._jobs = jobs
        self._blobs = blobs
        self._registry = registry
        self._publisher = publisher
        self._keep = keep_uploads
        self._metrics = metrics
        self._xlsx_in_memory_max = xlsx_in_memory_max_bytes

    def use(self, new: Registry) -> None:
        """A reloaded registry's, for the jobs started from now on."""
        self._registry = new

    async def run(self, job: Job) -> None:
        if job.status in FINISHED:
            return
        await self._jobs.update(
            job.id, status="RUNNING", started_at=job.started_at or now(), heartbeat_at=now()
        )
        async with heartbeat(self._jobs, job.id, self._metrics):
            status, message = await self._read(job)
        changes: dict[str, object] = {"status": status, "progress": 100, "ended_at": now()}
        if message is not None:
            stored = await self._jobs.get(job.id)
            errors = stored.errors if stored is not None else job.errors
            changes["errors"] = [*errors, {"row": 0, "message": message}][:MAX_ERRORS]
        await self._jobs.update(job.id, **changes)
        self._metrics.jobs.labels(status).inc()
        log.info("job %s: %s", job.id, status if message is None else f"{status} ({message})")
        if not self._keep:
            await self._blobs.delete(job.id)

    async def _read(self, job: Job) -> tuple[str, str | None]:
        entity = self._registry.entities.get(job.target or "")
        if entity is None:
            return "FAILED", f"the entity {job.target!r} is no longer in the registry"
        request = EntityRequest.from_payload(job.request["payload"])
        mapper = RowMapper(entity, job.id, request)
        try:
            stream = await self._blobs.open(job.id)
        except FileNotFoundError:
            return "FAILED", "the uploaded file is missing"
        with stream:
            try:
                rows, progress = await asyncio.to_thread(
                    _open_rows, stream, request.file_type, job.checkpoint, self._xlsx_in_memory_max
                )
                return await self._import(job, request, mapper, rows, progress)
            except UnicodeDecodeError:
                return "FAILED", "the file is not UTF-8 text"
            except ValueError as exc:
                return "FAILED", str(exc)

    async def _import(
        self, job: Job, request: EntityRequest, mapper: RowMapper, rows: Rows, progress: Callable[[int], int]
    ) -> tuple[str, str | None]:
        # One batch is published and stored while the next is read and mapped; each batch's figures
        # are stored (with its last row as the checkpoint) only once Kafka has acknowledged it and
        # the batch before it has been stored.
        total, imported, failed, errors = job.total, job.imported, job.failed, list(job.errors)
        async with OneInFlight() as in_flight:
            while True:
                # Mapped on the loop (~50 ms a batch, under the GIL either way): made in a worker
                # thread and freed here, the records cost a second malloc arena, ~40 MiB at 1M
                # rows (bench/NOTES.md, "entity imports").
                batch = _map_batch(rows, mapper, request.mapping)
                await asyncio.sleep(0)  # the batch in flight's acknowledgement, the heartbeat
                if batch.last == 0:
                    break
                good, bad = len(batch.records), len(batch.bad)
                total, imported, failed = total + good + bad, imported + good, failed + bad
                errors.extend(batch.bad[: max(0, MAX_ERRORS - len(errors))])
                self._metrics.rows.labels("failed").inc(bad)
                figures = {
                    "checkpoint": batch.last, "total": total, "imported": imported, "failed": failed,
                    "errors": list(errors), "progress": min(99, progress(batch.last)),
                }  # fmt: skip
                await in_flight.start(self._publish(job.id, mapper.topic, batch.records, figures))
            await in_flight.finish()
        if total and not imported:
            return "FAILED", "no row could be imported"
        return "COMPLETED", None

    async def _publish(
        self, job_id: str, topic: str, records: list[OutRecord], figures: dict[str, Any]
    ) -> None:
        if records:
            await self._publisher.publish(topic, records)
        self._metrics.rows.labels("imported").inc(len(records))
        await self._jobs.update(job_id, heartbeat_at=now(), **figures)


def _open_rows(
    stream: IO[bytes], file_type: str, after: int, xlsx_in_memory_max: int
) -> tuple[Rows, Callable[[int], int]]:
    """The file's rows after row ``after``, and the progress (0-100) at a row number."""
    if file_type == "xlsx":
        height, rows = xlsx_rows(stream, after, in_memory_max_bytes=xlsx_in_memory_max)
        return rows, lambda row: row * 100 // max(1, height)
    size = max(1, os.fstat(stream.fileno()).st_size)
    return csv_rows(stream, after), lambda _row: position(stream) * 100 // size


def _map_batch(rows: Rows, mapper: RowMapper, mapping: dict[int, str]) -> _Batch:
    """The next ``BATCH_ROWS`` rows as records and errors."""
    batch = _Batch()
    syncts = int(time.time() * 1000)
    for number, cells in take(rows, BATCH_ROWS):
        batch.last = number
        if number == 1 and is_header(cells, mapping):
            continue
        try:
            record = mapper.record(number, cells, syncts)
        except ValueError as exc:
            batch.bad.append({"row": number, "message": str(exc)[:512]})
        else:
            if record is not None:
                batch.records.append(record)
    return batch
