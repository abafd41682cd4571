"""The import worker's small HTTP port (/health, /ready, /metrics) and the lifecycle of its loop,
its publisher and its job store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from consumers.importer.entity_job import EntityJob
from consumers.importer.jsonl_job import JsonlJob
from consumers.importer.metrics import ImporterMetrics
from consumers.importer.operation_job import OperationJob
from consumers.importer.service import ImporterService
from consumers.importer.settings import ImporterSettings
from ingest_core.blobs import open_blob_store
from ingest_core.jobs import ENTITY_KIND, JSONL_KIND, OPERATION_KIND, JobStore, open_job_store
from ingest_core.jsonl import LineChecker
from ingest_core.publish import ProducerOptions, open_publisher
from ingest_core.registry import Registry
from ingest_core.service import FAILED, ops_handlers, reload_on_sighup, retry_unavailable, run_or_stop

log = logging.getLogger(__name__)

SERVICE = web.AppKey("importer.service", ImporterService)
Apply = Callable[[Registry], None]
RELOAD: web.AppKey[Apply] = web.AppKey("importer.reload")


def create_app(settings: ImporterSettings, registry: Registry) -> web.Application:
    app = web.Application()
    app[FAILED] = []
    metrics = ImporterMetrics()

    async def importer_ctx(app: web.Application) -> AsyncIterator[None]:
        publisher = open_publisher(
            "confluent",
            ProducerOptions(
                bootstrap=settings.kafka_bootstrap_servers, delivery_timeout_ms=settings.delivery_timeout_ms,
                metadata_timeout_ms=3000, linger_ms=5.0, compression="lz4", max_inflight_events=100_000,
            ),
        )  # fmt: skip
        await publisher.start()
        jobs = open_job_store(settings.store_url)
        checker = LineChecker(registry, settings.max_line_bytes)
        blobs = open_blob_store(settings.blob_store_url, settings.upload_dir)
        await blobs.start()
        jsonl = JsonlJob(jobs, blobs, checker, publisher, settings.keep_uploads, metrics)
        entity = EntityJob(
            jobs,
            blobs,
            registry,
            publisher,
            settings.keep_uploads,
            metrics,
            settings.xlsx_in_memory_max_bytes,
        )
        operation = OperationJob(jobs, registry, publisher, metrics)
        service = ImporterService(
            settings.kafka_bootstrap_servers, settings.group, settings.jobs_topic, jobs,
            {JSONL_KIND: jsonl, ENTITY_KIND: entity, OPERATION_KIND: operation}, metrics,
            settings.max_backoff_ms / 1000, settings.membership,
        )  # fmt: skip
        app[SERVICE] = service

        def apply(new: Registry) -> None:
            # Jobs started from now on see the new types and entities.
            jsonl.use(LineChecker(new, settings.max_line_bytes))
            entity.use(new)
            operation.use(new)

        app[RELOAD] = apply
        task = asyncio.create_task(run_or_stop(_run(service, jobs, settings), app, "the import loop"))
        yield
        service.stopping = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=30)
        service.close()
        await publisher.close()
        await jobs.close()
        await blobs.close()

    def ready() -> tuple[bool, dict[str, Any]]:
        service = app.get(SERVICE)
        return service is not None and service.polled, {}

    app.cleanup_ctx.append(importer_ctx)

    def apply_reloaded(new: Registry) -> None:
        if RELOAD in app:
            app[RELOAD](new)

    app.cleanup_ctx.append(reload_on_sighup(settings.topics_file, apply_reloaded, "ingest-importer"))
    for path, handler in ops_handlers(ready, metrics.registry).items():
        app.router.add_get(path, handler)
    return app


async def _run(service: ImporterService, jobs: JobStore, settings: ImporterSettings) -> None:
    # Migrated here, not in the start-up: a store down at start is waited for while SIGTERM still
    # stops the program (and /ready says not ready until the loop polls).
    await retry_unavailable(jobs.migrate, settings.max_backoff_ms / 1000, lambda: service.stopping)
    if not service.stopping:
        await service.run()
