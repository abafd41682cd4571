"""The sink's small HTTP port (/health, /ready, /metrics) and the lifecycle of its consumer loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from consumers.sink.metrics import SinkMetrics
from consumers.sink.service import SinkService
from consumers.sink.settings import SinkSettings
from ingest_core.malformed import watch_malformed
from ingest_core.registry import Registry
from ingest_core.service import FAILED, ops_handlers, reload_on_sighup, retry_unavailable, run_or_stop
from ingest_core.store import Store, open_store

log = logging.getLogger(__name__)

SERVICE = web.AppKey("sink.service", SinkService)
METRICS = web.AppKey("sink.metrics", SinkMetrics)


def create_app(settings: SinkSettings, registry: Registry, store: Store | None = None) -> web.Application:
    app = web.Application()
    sink_metrics = SinkMetrics()
    app[METRICS] = sink_metrics
    app[FAILED] = []

    async def sink_ctx(app: web.Application) -> AsyncIterator[None]:
        the_store = store or open_store(settings.store_url)
        # Migrations are applied before the port reports ready; a store down at start is retried
        # by the service itself, so start-up does not fail on a transient outage.
        service = SinkService(settings, registry, the_store, sink_metrics)
        app[SERVICE] = service
        loop = retry_unavailable(service.run, settings.max_backoff_ms / 1000, lambda: service.runner.stopping)
        task = asyncio.create_task(run_or_stop(loop, app, "the sink's loop"))
        yield
        service.runner.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
        await service.close()
        await the_store.close()

    app.cleanup_ctx.append(watch_malformed(sink_metrics.malformed.inc))
    app.cleanup_ctx.append(sink_ctx)

    def apply(new: Registry) -> None:
        service = app.get(SERVICE)
        if service is not None:
            service.reload(new)

    app.cleanup_ctx.append(reload_on_sighup(settings.topics_file, apply, "ingest-sink"))

    def ready() -> tuple[bool, dict[str, Any]]:
        service = app.get(SERVICE)
        return service is not None and service.ready(), {}

    for path, handler in ops_handlers(ready, sink_metrics.registry).items():
        app.router.add_get(path, handler)
    return app
