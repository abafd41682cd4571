"""What the handlers share, in one typed object under one ``web.AppKey``."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.admission import Admission
from gateway.ingest import Ingestor
from gateway.metrics import GatewayMetrics
from gateway.publisher import Publisher


@dataclass(slots=True)
class GatewayContext:
    ingestor: Ingestor
    metrics: GatewayMetrics
    max_body_bytes: int
    body_timeout_s: float
    admission: Admission
    _publisher: Publisher | None = field(default=None)

    def publisher(self) -> Publisher:
        assert self._publisher is not None, "publisher used before the app started"
        return self._publisher

    def has_publisher(self) -> bool:
        return self._publisher is not None

    def set_publisher(self, publisher: Publisher | None) -> None:
        self._publisher = publisher


CONTEXT = web.AppKey("gateway.context", GatewayContext)
