"""What the handlers share, in one typed object under one ``web.AppKey``."""

from __future__ import annotations

import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.access import Access
from gateway.admission import Admission
from gateway.jobs import Jobs
from gateway.metrics import GatewayMetrics
from ingest_core.auth import Principals
from ingest_core.prepare import Ingestor, Prepared
from ingest_core.publish import Publisher
from ingest_core.registry import Registry
from ingest_core.source_import import SourceImporter


@dataclass(slots=True)
class GatewayContext:
    ingestor: Ingestor
    metrics: GatewayMetrics
    max_body_bytes: int
    body_timeout_s: float
    admission: Admission
    principals: Principals
    source_importer: SourceImporter
    registry: Registry
    access: Access
    _publisher: Publisher | None = field(default=None)
    _jobs: Jobs | None = field(default=None)

    def publisher(self) -> Publisher:
        assert self._publisher is not None, "publisher used before the app started"
        return self._publisher

    def has_publisher(self) -> bool:
        return self._publisher is not None

    def set_publisher(self, publisher: Publisher | None) -> None:
        self._publisher = publisher

    def jobs(self) -> Jobs:
        assert self._jobs is not None, "job store used before the app started"
        return self._jobs

    def set_jobs(self, jobs: Jobs | None) -> None:
        self._jobs = jobs

    def publish(self, prepared: Prepared) -> Coroutine[Any, Any, None]:
        """Hand ``prepared``'s records to the publisher now; the coroutine returned ends once Kafka
        has acknowledged them all, counting them as accepted or failed.

        Not itself a coroutine: the caller drops its ``prepared`` before awaiting, so nothing of the
        request stays referenced while Kafka acknowledges (why: bench/NOTES.md, "freed at once")."""
        return self._delivered(
            self.publisher().publish(prepared.topic, prepared.records),
            prepared.dataset,
            len(prepared.records),
        )

    async def _delivered(self, sending: Coroutine[Any, Any, None], dataset: str, count: int) -> None:
        start = time.perf_counter()
        try:
            await sending
        except Exception:
            self.metrics.observe_events(dataset, "failed", count)
            raise
        self.metrics.kafka_ack.observe(time.perf_counter() - start)
        self.metrics.observe_events(dataset, "accepted", count)
        self.metrics.batch_size.observe(count)


CONTEXT = web.AppKey("gateway.context", GatewayContext)
