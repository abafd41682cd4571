"""Operational endpoints: ``/health`` (alive), ``/ready`` (registry loaded, Kafka answering), ``/metrics``."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.context import CONTEXT
from gateway.handling import Routes


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    kafka_ok = ctx.has_publisher() and ctx.publisher().ready()
    body = {"status": "ready" if kafka_ok else "not ready", "registry": "loaded", "kafka": kafka_ok}
    return web.json_response(body, status=200 if kafka_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    admission = ctx.admission
    ctx.metrics.inflight = (admission.requests, admission.bytes, admission.events)
    if ctx.has_publisher():
        ctx.metrics.producer_restarts = ctx.publisher().restarts
    return web.Response(
        body=generate_latest(ctx.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def add_routes(routes: Routes) -> None:
    for path, handler in (("/health", health), ("/ready", ready), ("/metrics", metrics)):
        routes.add(path, ["GET", "HEAD"], handler)
