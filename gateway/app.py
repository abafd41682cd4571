"""The gateway's application factory: routes, and the producer's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Final, TypedDict

from aiohttp import web

from gateway.access import Access
from gateway.admission import Admission
from gateway.context import CONTEXT, GatewayContext
from gateway.handling import Routes
from gateway.jobs import jobs_context
from gateway.limits import RateLimiter
from gateway.metrics import GatewayMetrics
from gateway.reload import reload_context
from gateway.routes import docs, entity_import, ingest, jsonl_import, operations, ops, source_import
from gateway.settings import GatewaySettings
from ingest_core.auth import Principals, load_principals
from ingest_core.blobs import BlobStore, open_blob_store
from ingest_core.malformed import watch_malformed
from ingest_core.prepare import Ingestor
from ingest_core.publish import ProducerOptions, Publisher, open_publisher
from ingest_core.registry import Registry
from ingest_core.source_import import SourceImporter


class ServerOptions(TypedDict):
    """What the app needs of the server that runs it: ``gateway.serve``'s, and the tests' own."""

    auto_decompress: bool  # False: the ingestion route decodes bodies itself (``gateway.body``)
    # False: a request whose client goes away mid-way still runs to its end and is counted as
    # answered; its body read fails as the client's doing (aiohttp's own default, which its test
    # server does not use).
    handler_cancellation: bool


SERVER_OPTIONS: Final[ServerOptions] = {"auto_decompress": False, "handler_cancellation": False}


def make_publisher(settings: GatewaySettings) -> Publisher:
    """The Kafka client chosen by GATEWAY_PUBLISHER (confluent-kafka unless told otherwise)."""
    options = ProducerOptions(
        bootstrap=settings.kafka_bootstrap_servers,
        delivery_timeout_ms=settings.delivery_timeout_ms,
        metadata_timeout_ms=settings.metadata_timeout_ms,
        linger_ms=settings.kafka_linger_ms,
        batch_linger_ms=settings.kafka_batch_linger_ms,
        compression=settings.kafka_compression,
        max_inflight_events=settings.max_inflight_events,
        report_wakeup=settings.kafka_report_wakeup,
        max_record_bytes=settings.kafka_max_record_bytes,
    )
    return open_publisher(settings.publisher, options)


def _started(blobs: BlobStore) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(_app: web.Application) -> AsyncIterator[None]:
        await blobs.start()
        yield
        await blobs.close()

    return context


def create_app(
    settings: GatewaySettings, registry: Registry, principals: Principals | None = None
) -> web.Application:
    """The gateway's app; ``principals`` from ``AUTH_FILE`` unless given (raises AuthFileError)."""
    metrics = GatewayMetrics(d.id for d in registry)
    ctx = GatewayContext(
        ingestor=Ingestor(registry, settings.max_batch_events, settings.kafka_max_record_bytes),
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_ms / 1000,
        admission=Admission(
            max_requests=settings.max_inflight_requests,
            max_bytes=settings.max_inflight_bytes,
            max_events=settings.max_inflight_events,
        ),
        principals=load_principals(settings.auth_file) if principals is None else principals,
        source_importer=SourceImporter(registry, settings.max_batch_events, settings.kafka_max_record_bytes),
        registry=registry,
        access=Access(RateLimiter(), settings.trusted_proxies),
    )
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[CONTEXT] = ctx

    async def publisher_ctx(_app: web.Application) -> AsyncIterator[None]:
        # Fails the start (and so the program) when Kafka does not answer: readiness is never faked.
        publisher = make_publisher(settings)
        await publisher.start()
        ctx.set_publisher(publisher)
        yield
        # aiohttp has already stopped accepting and let in-flight requests finish; now flush.
        await publisher.close()
        ctx.set_publisher(None)

    app.cleanup_ctx.append(watch_malformed(metrics.count_malformed))
    app.cleanup_ctx.append(publisher_ctx)
    app.cleanup_ctx.append(jobs_context(settings.store_url, ctx.set_jobs))
    app.cleanup_ctx.append(reload_context(settings, keep_principals=principals is not None))
    routes = Routes(app, metrics, settings.access_log)
    ingest.add_routes(routes)
    source_import.add_routes(routes)
    blobs = open_blob_store(settings.blob_store_url, settings.upload_dir)
    app.cleanup_ctx.append(_started(blobs))
    app[jsonl_import.UPLOADS] = jsonl_import.uploads_from(settings, blobs)
    jsonl_import.add_routes(routes)
    entity_import.add_routes(routes)
    operations.add_routes(routes)
    ops.add_routes(routes, app, (settings.host, settings.metrics_port), reuse_port=settings.workers > 1)
    docs.add_routes(routes)
    routes.add_not_found()
    return app
