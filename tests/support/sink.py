"""Run the real sink in-process (its app, consumer loop and store) against real Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp.test_utils import TestServer

from consumers.sink.app import SERVICE, create_app
from consumers.sink.service import SinkService
from consumers.sink.settings import SinkSettings
from ingest_core.registry import Registry
from tests.support.kafka import unique


@dataclass
class SinkHandle:
    service: SinkService
    session: aiohttp.ClientSession
    host: str
    port: int

    async def metrics(self) -> str:
        async with self.session.get("/metrics") as r:
            return await r.text()

    async def ready_status(self) -> int:
        async with self.session.get("/ready") as r:
            return r.status


def metric_value(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@asynccontextmanager
async def running_sink(
    bootstrap: str, registry: Registry, store_url: str, dlq_topic: str = "ingest.dlq", batch_size: int = 2000
) -> AsyncIterator[SinkHandle]:
    settings = SinkSettings(
        kafka_bootstrap_servers=bootstrap,
        topics_file=registry.path,
        group=unique("sink"),
        store_url=store_url,
        dlq_topic=dlq_topic,
        batch_size=batch_size,
        max_backoff_ms=500,
    )
    app = create_app(settings, registry)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as session:
            yield SinkHandle(app[SERVICE], session, server.host, server.port or 0)
    finally:
        await server.close()
