"""The seam between handlers and Kafka: what the gateway needs of a producer, and nothing more.

Handlers call ``publish`` and never import a Kafka client, so the client can change (confluent-kafka
by default) without touching them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest_core.record import OutRecord

# The most one record may take unless KAFKA_MAX_RECORD_BYTES says otherwise: librdkafka's own default
# (message.max.bytes), under the broker's default topic limit (1,048,588 bytes for a record batch).
DEFAULT_MAX_RECORD_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class ProducerOptions:
    """What every publisher is configured with (from GatewaySettings)."""

    bootstrap: str
    delivery_timeout_ms: int
    metadata_timeout_ms: int
    linger_ms: float  # records of single-event requests
    compression: str
    max_inflight_events: int
    metadata_refresh_s: float = 2.0
    # Records of requests of several events; None: the same as linger_ms.
    batch_linger_ms: float | None = None
    # How confluent-kafka's delivery reports reach the loop: "pipe" (librdkafka signals) or "timer".
    report_wakeup: str = "pipe"
    # The most a record may take; the gateway refuses a request holding a larger one before any of
    # it is published (ingest_core.prepare), so the clients never meet one.
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES


class Publisher(Protocol):
    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        """Return once Kafka has acknowledged every record (acks=all).

        Callers pass ``records`` without keeping a reference, and implementations drop theirs once
        the records are queued: a request's objects must not live through the wait (see
        routes/ingest.py).

        Raises TopicMissing (topic absent on the cluster), KafkaUnavailable (no ack within the
        delivery timeout; some records may still land: retrying with the same msgid is harmless),
        Overloaded (too much already in flight; nothing was sent, but for a refusal the client
        makes part-way that the publisher could not foresee), PayloadTooLarge (a record exceeds
        Kafka's maximum record size; the gateway checks sizes before publishing).
        """
        ...

    def ready(self) -> bool:
        """Did Kafka answer the last metadata request, and is the producer usable?"""
        ...

    @property
    def restarts(self) -> int:
        """Producers replaced since start after the client declared them failed for good."""
        ...

    async def start(self) -> None:
        """Connect and learn the cluster; raises KafkaUnavailable when Kafka does not answer."""
        ...

    async def close(self) -> None:
        """Deliver what is queued (bounded) and disconnect."""
        ...
