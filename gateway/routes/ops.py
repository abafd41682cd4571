"""Operational endpoints: ``/health`` (alive), ``/ready`` (registry loaded, Kafka answering), ``/metrics``
(with the API, or alone on ``METRICS_PORT`` so that it is not exposed with the API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from gateway.context import CONTEXT
from gateway.handling import Routes
from gateway.listener import ListenError
from ingest_core.service import ops_handlers


def add_routes(
    routes: Routes, app: web.Application, metrics_at: tuple[str, int | None] = ("", None),
    reuse_port: bool = False,
) -> None:  # fmt: skip
    """The three on the API's port; ``/metrics`` on ``metrics_at`` (host, port) instead, when a port
    is given (``reuse_port``: the gateway's workers share it as they share the API's)."""
    ctx = app[CONTEXT]

    def ready() -> tuple[bool, dict[str, Any]]:
        kafka_ok = ctx.has_publisher() and ctx.publisher().ready()
        return kafka_ok, {"registry": "loaded", "kafka": kafka_ok}

    def before_scrape() -> None:
        admission = ctx.admission
        ctx.metrics.inflight = (admission.requests, admission.bytes, admission.events)
        if ctx.has_publisher():
            ctx.metrics.producer_restarts = ctx.publisher().restarts

    handlers = ops_handlers(ready, ctx.metrics.registry, before_scrape)
    host, metrics_port = metrics_at
    if metrics_port is not None:
        app.cleanup_ctx.append(_metrics_server(handlers.pop("/metrics"), host, metrics_port, reuse_port))
    for path, handler in handlers.items():
        routes.add(path, ["GET", "HEAD"], handler)


def _metrics_server(
    scrape: Callable[[web.Request], Any], host: str, port: int, reuse_port: bool
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def serving(_app: web.Application) -> AsyncIterator[None]:
        metrics_app = web.Application()
        metrics_app.router.add_route("GET", "/metrics", scrape)
        runner = web.AppRunner(metrics_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        except OSError as exc:  # a start error with its reason, as the API's own port gives
            await runner.cleanup()
            raise ListenError(
                f"METRICS_PORT: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None
        yield
        await runner.cleanup()

    return serving
