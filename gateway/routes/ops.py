"""Operational endpoints: ``/health`` (alive), ``/ready`` (registry loaded, Kafka answering), ``/metrics``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.context import CONTEXT
from gateway.handling import Routes
from ingest_core.service import ops_handlers


def add_routes(routes: Routes, app: web.Application) -> None:
    ctx = app[CONTEXT]

    def ready() -> tuple[bool, dict[str, Any]]:
        kafka_ok = ctx.has_publisher() and ctx.publisher().ready()
        return kafka_ok, {"registry": "loaded", "kafka": kafka_ok}

    def before_scrape() -> None:
        admission = ctx.admission
        ctx.metrics.inflight = (admission.requests, admission.bytes, admission.events)
        if ctx.has_publisher():
            ctx.metrics.producer_restarts = ctx.publisher().restarts

    for path, handler in ops_handlers(ready, ctx.metrics.registry, before_scrape).items():
        routes.add(path, ["GET", "HEAD"], handler)
