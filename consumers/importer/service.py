"""The import worker's loop: take an import command (a JSONL import, an entity file import) from
``JOBS_TOPIC``, run the job to its end with its kind's runner, store the outcome, and only then
commit the command's offset.

While a job runs, every assigned partition is paused and the consumer keeps polling, so the worker
stays in its group however long the job takes. A command is redelivered if the worker stops before
its offset is committed (after a crash, to it or another member): the job then resumes from its
stored checkpoint, and a job already finished is skipped. An outage of the store or of Kafka is
retried with backoff, from the checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message

from consumers.importer.metrics import ImporterMetrics
from consumers.importer.running import JobRunner
from ingest_core.errors import IngestError
from ingest_core.jobs import JobStore
from ingest_core.kafka import DYNAMIC, Membership, client_settings
from ingest_core.store import StoreUnavailable

log = logging.getLogger(__name__)

POLL_S = 0.5


class ImporterService:
    def __init__(
        self,
        bootstrap: str,
        group: str,
        jobs_topic: str,
        jobs: JobStore,
        runners: Mapping[str, JobRunner],
        metrics: ImporterMetrics,
        max_backoff_s: float,
        membership: Membership = DYNAMIC,
    ) -> None:
        self._consumer = Consumer(
            client_settings(
                {
                    "bootstrap.servers": bootstrap,
                    "group.id": group,
                    "client.id": "ingest-importer",
                    **membership.settings(),
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    # A job runs while the consumer polls paused partitions: this bounds only a stall.
                    "max.poll.interval.ms": 600_000,
                }
            )
        )
        self._topic = jobs_topic
        self._jobs = jobs
        self._runners = runners  # by the job's kind
        self._metrics = metrics
        self._max_backoff_s = max_backoff_s
        self.stopping = False
        self.running_job: str | None = None
        self.polled = False  # the consumer has answered at least once: ready
        self._waiting: deque[Message] = deque()

    async def run(self) -> None:
        self._consumer.subscribe([self._topic])
        while not self.stopping:
            msg = (
                self._waiting.popleft()
                if self._waiting
                else await asyncio.to_thread(self._consumer.poll, POLL_S)
            )
            self.polled = True
            if msg is None:
                continue
            if msg.error():
                log.warning("jobs topic: %s", msg.error())
                continue
            await self._take(msg)

    async def _take(self, msg: Message) -> None:
        assigned = self._consumer.assignment()
        self._consumer.pause(assigned)
        task = asyncio.create_task(self._handle(msg))
        try:
            while not task.done():
                # Keeps the membership; paused partitions return nothing (a partition assigned
                # meanwhile may: its message waits its turn).
                late = await asyncio.to_thread(self._consumer.poll, 0.2)
                if late is not None and not late.error():
                    self._waiting.append(late)  # taken next; its offset is committed after it
                    self._consumer.pause(self._consumer.assignment())
            await task
            try:
                self._consumer.commit(message=msg, asynchronous=False)
            except KafkaException as exc:
                # Revoked meanwhile: its new owner gets the command again and skips the finished job.
                log.warning("could not commit the command of a finished job: %s", exc)
        finally:
            self._consumer.resume(self._consumer.assignment())

    async def _handle(self, msg: Message) -> None:
        try:
            command: Any = json.loads(msg.value() or b"")
            job_id = command["job_id"]
            assert isinstance(job_id, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            log.error(  # noqa: TRY400 (a bad command, not a bug: no traceback)
                "jobs topic: not a command at %s[%s]@%s: skipped", msg.topic(), msg.partition(), msg.offset()
            )
            return
        backoff = 0.2
        while not self.stopping:
            try:
                job = await self._jobs.get(job_id)
                if job is None:
                    log.error("import %s: no such job: skipped", job_id)
                    return
                runner = self._runners.get(job.kind)
                if runner is None:
                    log.error("import %s: no runner for its kind %r: skipped", job_id, job.kind)
                    return
                self.running_job = job_id
                with self._metrics.duration.labels(job.kind).time():
                    await runner.run(job)
            except (StoreUnavailable, IngestError) as exc:
                log.warning("import %s: %s; resuming from its checkpoint in %.1fs", job_id, exc, backoff)
                self._metrics.retries.inc()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
            else:
                return
            finally:
                self.running_job = None

    def close(self) -> None:
        self._consumer.close()
