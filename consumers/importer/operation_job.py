"""One import operation's run: its staged users published to the topic of the registry's type
``user``, a batch at a time, each batch acknowledged by Kafka before the operation's counts and
checkpoint are stored (a worker stopped at any moment resumes there; no user is published twice).

A user is one record: ``dataset`` ``user``, ``msgid`` the operation id, ``event_id``
``<operation id>:<first import id>``. A user whose username or an email (either ignoring case)
repeats one imported earlier in the same operation, or who fails the type's schema, is counted as
an error and the run goes on. The run ends ``importer_done``; it stops where it is when the
operation is cancelled meanwhile (``import.new``), and ends ``importer_import_failed`` only when
there is nothing it can do (no ``user`` type in the registry).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from consumers.importer.metrics import ImporterMetrics
from consumers.importer.running import heartbeat
from ingest_core.jobs import MAX_ERRORS, Job, JobStore, now
from ingest_core.operations import DONE, FAILED, IMPORTING, USER_TYPE
from ingest_core.publish import Publisher
from ingest_core.record import HEADER_DATASET, HEADER_EVENT_ID, HEADER_MSGID, OutRecord, build_value
from ingest_core.registry import Dataset, Registry

log = logging.getLogger(__name__)

BATCH_USERS = 1000


class OperationJob:
    def __init__(
        self, jobs: JobStore, registry: Registry, publisher: Publisher, metrics: ImporterMetrics
    ) -> None:
        self._jobs = jobs
        self._registry = registry
        self._publisher = publisher
        self._metrics = metrics

    def use(self, new: Registry) -> None:
        """A reloaded registry's, for the jobs started from now on."""
        self._registry = new

    async def run(self, job: Job) -> None:
        if job.status != IMPORTING:
            log.info("operation %s is %s, not importing: skipped", job.id, job.status)
            return
        target = self._registry.types.get(USER_TYPE)
        if target is None or target.entry_topic is None:
            await self._end(
                job, FAILED, [{"index": -1, "message": f"the registry has no type {USER_TYPE!r}"}]
            )
            return
        await self._jobs.update(job.id, heartbeat_at=now())
        async with heartbeat(self._jobs, job.id, self._metrics):
            finished = await self._publish_all(job, target)
        if finished:
            await self._end(job, DONE, None)

    async def _end(self, job: Job, status: str, errors: list[dict[str, Any]] | None) -> None:
        changes: dict[str, Any] = {"status": status, "progress": 100, "ended_at": now()}
        if errors is not None:
            changes["errors"] = errors
        if await self._jobs.update_if(job.id, IMPORTING, **changes):
            self._metrics.jobs.labels(status).inc()
            log.info("operation %s: %s", job.id, status)

    async def _publish_all(self, job: Job, target: Dataset) -> bool:
        """Publish from the checkpoint on; False when the operation was cancelled meanwhile."""
        assert target.entry_topic is not None
        users: list[dict[str, Any]] = job.request.get("users", [])
        imported, failed, errors = job.imported, job.failed, list(job.errors)
        names: set[str] = set()
        emails: set[str] = set()
        batch: list[OutRecord] = []
        syncts = int(time.time() * 1000)
        for index, user in enumerate(users):
            # Users before the checkpoint are gone over again only to know who was imported.
            problem = _invalid(user, target) or _duplicate(user, names, emails)
            if index < job.checkpoint:
                continue
            if problem is not None:
                failed += 1
                if len(errors) < MAX_ERRORS:
                    errors.append({"index": index, "message": problem})
            else:
                batch.append(_record(job.id, user, syncts))
                imported += 1
            if len(batch) >= BATCH_USERS or index == len(users) - 1:
                if batch:
                    await self._publisher.publish(target.entry_topic, batch)
                    self._metrics.rows.labels("imported").inc(len(batch))
                    batch = []
                figures = {
                    "checkpoint": index + 1, "total": len(users), "imported": imported, "failed": failed,
                    "errors": errors, "progress": min(99, (index + 1) * 100 // len(users)),
                    "heartbeat_at": now(),
                }  # fmt: skip
                if not await self._jobs.update_if(job.id, IMPORTING, **figures):
                    log.info("operation %s was cancelled: its run stops", job.id)
                    return False
        return True


def _duplicate(user: dict[str, Any], names: set[str], emails: set[str]) -> str | None:
    """Why the user repeats one taken earlier (then nothing is noted), else None (the user noted)."""
    name = str(user.get("username", "")).strip().lower()
    addresses = [str(e).strip().lower() for e in user.get("emails", [])]
    if name and name in names:
        return f"the username {user['username']!r} repeats an earlier user's"
    repeated = next((a for a in addresses if a in emails), None)
    if repeated is not None:
        return f"the email {repeated!r} repeats an earlier user's"
    if name:
        names.add(name)
    emails.update(addresses)
    return None


def _invalid(user: dict[str, Any], target: Dataset) -> str | None:
    return None if target.validator is None else target.validator.first_error(user)


def _record(operation_id: str, user: dict[str, Any], syncts_ms: int) -> OutRecord:
    event_id = f"{operation_id}:{user['importIds'][0]}"
    key = event_id.encode()
    value = build_value(USER_TYPE, operation_id, event_id, user, syncts_ms)
    headers: list[tuple[str, str | bytes | None]] = [
        (HEADER_DATASET, USER_TYPE.encode()), (HEADER_EVENT_ID, key), (HEADER_MSGID, operation_id.encode()),
    ]  # fmt: skip
    return OutRecord(key, value, headers)
