"""One JSONL import, run to its end: the file read from its checkpoint, good lines published (and
acknowledged by Kafka) a batch at a time, then the job's counts, errors and checkpoint stored, so
that a worker stopped at any moment resumes where the stored checkpoint says and no line is
published as a second row. Its heartbeat is stored every second while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from typing import Any

from consumers.importer.metrics import ImporterMetrics
from consumers.importer.running import OneInFlight, heartbeat, position, take
from ingest_core.blobs import BlobStore
from ingest_core.jobs import MAX_ERRORS, Job, JobStore, now
from ingest_core.jsonl import Bad, Good, LineChecker, NotUtf8, lines
from ingest_core.publish import Publisher
from ingest_core.record import OutRecord

log = logging.getLogger(__name__)

BATCH_LINES = 10_000
FINISHED = frozenset({"COMPLETE", "FAILED"})
NOT_QUEUED = frozenset({"WAITING_FOR_UPLOAD", "UPLOADING"})


class JsonlJob:
    def __init__(
        self, jobs: JobStore, blobs: BlobStore, checker: LineChecker, publisher: Publisher,
        keep_uploads: bool, metrics: ImporterMetrics,
    ) -> None:  # fmt: skip
        self._metrics = metrics
        self._jobs = jobs
        self._blobs = blobs
        self._checker = checker
        self._publisher = publisher
        self._keep = keep_uploads

    def use(self, new: LineChecker) -> None:
        """A reloaded registry's, for the jobs started from now on."""
        self._checker = new

    async def run(self, job: Job) -> None:
        """Run ``job`` from its checkpoint to COMPLETE or FAILED. Raises StoreUnavailable and the
        publisher's errors (the job is then resumed from its checkpoint when tried again)."""
        if job.status in FINISHED:
            return
        if job.status in NOT_QUEUED:
            # A command whose upload was then undone (its ack came too late for the gateway): the
            # upload that follows queues the import again.
            log.info("import %s is %s, not queued: skipped", job.id, job.status)
            return
        await self._jobs.update(
            job.id, status="IN_PROGRESS", started_at=job.started_at or now(), heartbeat_at=now()
        )
        async with heartbeat(self._jobs, job.id, self._metrics):
            status, message = await self._read(job)
        changes: dict[str, object] = {"status": status, "progress": 100, "ended_at": now()}
        if message is not None:
            changes["errors"] = [*job.errors, {"line": 0, "message": message}][:MAX_ERRORS]
        await self._jobs.update(job.id, **changes)
        self._metrics.jobs.labels(status).inc()
        log.info("import %s: %s", job.id, status if message is None else f"{status} ({message})")
        if not self._keep:
            await self._blobs.delete(job.id)

    async def _read(self, job: Job) -> tuple[str, str | None]:
        try:
            stream = await self._blobs.open(job.id)
        except FileNotFoundError:
            return "FAILED", "the uploaded file is missing"
        # One batch is published and stored while the next is read and checked. Each batch's figures
        # are taken when it is checked, and stored (with its last line as the checkpoint) only once
        # Kafka has acknowledged it and the batch before it has been stored.
        total, imported, failed, errors = job.total, job.imported, job.failed, list(job.errors)
        with stream:
            size = max(1, os.fstat(stream.fileno()).st_size)
            numbered = lines(stream, self._checker.max_line_bytes, after=job.checkpoint)
            async with OneInFlight() as in_flight:
                while batch := await asyncio.to_thread(take, numbered, BATCH_LINES):
                    syncts = int(time.time() * 1000)
                    by_topic: dict[str, list[OutRecord]] = defaultdict(list)
                    good = bad = 0
                    for number, line in batch:
                        try:
                            checked = self._checker.check(job.id, number, line, syncts)
                        except NotUtf8 as exc:
                            return "FAILED", f"the file is not UTF-8 text ({exc})"
                        if isinstance(checked, Good):
                            by_topic[checked.topic].append(checked.record)
                            good += 1
                        elif isinstance(checked, Bad):
                            bad += 1
                            if len(errors) < MAX_ERRORS:
                                errors.append({"line": checked.line, "message": checked.message})
                    total, imported, failed = total + good + bad, imported + good, failed + bad
                    self._metrics.lines.labels("failed").inc(bad)
                    figures = {
                        "checkpoint": batch[-1][0], "total": total, "imported": imported, "failed": failed,
                        "errors": list(errors), "progress": min(99, position(stream) * 100 // size),
                    }  # fmt: skip
                    await in_flight.start(self._publish(job.id, by_topic, figures))
                await in_flight.finish()
        if total and not imported:
            return "FAILED", "no line could be imported"
        return "COMPLETE", None

    async def _publish(
        self, job_id: str, by_topic: dict[str, list[OutRecord]], figures: dict[str, Any]
    ) -> None:
        """Publish a batch's records, then store the job's figures as of its last line."""
        await asyncio.gather(*(self._publisher.publish(t, records) for t, records in by_topic.items()))
        good = sum(map(len, by_topic.values()))
        self._metrics.lines.labels("imported").inc(good)
        await self._jobs.update(job_id, heartbeat_at=now(), **figures)
