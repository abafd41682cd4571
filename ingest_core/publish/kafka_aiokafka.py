"""Publisher on aiokafka (pure Python): the alternative to confluent-kafka, chosen with
``GATEWAY_PUBLISHER=aiokafka``. Same guarantees: idempotent, acks=all, bounded waits.

confluent-kafka is the default because it is several times faster (bench/NOTES.md); this one
needs no native library. One producer serves every request, with ``KAFKA_LINGER_MS``:
``KAFKA_BATCH_LINGER_MS`` is the confluent publisher's.

aiokafka has no queue limit of its own. The events of the requests in flight are bounded by the
gateway (``MAX_INFLIGHT_EVENTS``, see ``gateway.admission``); the records of a request answered 503
after ``DELIVERY_TIMEOUT_MS`` stay in aiokafka's batches until its request timeout, the same length.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    UnknownTopicOrPartitionError,
)

from ingest_core.errors import KafkaUnavailable, PayloadTooLarge, TopicMissing
from ingest_core.publish.base import ProducerOptions
from ingest_core.publish.topic_watch import TopicWatch
from ingest_core.record import OutRecord


def _error_for(exc: BaseException) -> Exception:
    if isinstance(exc, UnknownTopicOrPartitionError):
        return TopicMissing()
    if isinstance(exc, MessageSizeTooLargeError | RecordTooLargeError):
        return PayloadTooLarge("An event exceeds Kafka's maximum record size")
    return KafkaUnavailable()


class AiokafkaPublisher:
    def __init__(self, options: ProducerOptions) -> None:
        self._delivery_timeout_s = options.delivery_timeout_ms / 1000
        self._metadata_timeout_s = options.metadata_timeout_ms / 1000
        self._producer = AIOKafkaProducer(
            bootstrap_servers=options.bootstrap,
            client_id="ingest-gateway",
            acks="all",
            enable_idempotence=True,
            linger_ms=options.linger_ms,
            compression_type=None if options.compression == "none" else options.compression,
            request_timeout_ms=options.delivery_timeout_ms,
            max_request_size=options.max_record_bytes,
        )
        self._watch = TopicWatch(self._fetch_topics, refresh_s=options.metadata_refresh_s)

    async def start(self) -> None:
        """Connect and read metadata; raises KafkaUnavailable if Kafka does not answer in time."""
        try:
            await asyncio.wait_for(self._producer.start(), self._metadata_timeout_s)
        except (KafkaError, OSError, TimeoutError):
            await self._producer.stop()
            raise KafkaUnavailable("Kafka did not answer a metadata request at start") from None
        await self._watch.start()

    async def close(self) -> None:
        await self._watch.close()
        await self._producer.stop()  # flushes what is queued

    def ready(self) -> bool:
        return self._watch.kafka_ok

    @property
    def restarts(self) -> int:
        return 0  # aiokafka's producer is never replaced (docs/semantics.md)

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        if not self._watch.kafka_ok:
            raise KafkaUnavailable()
        if topic not in self._watch.topics and not await self._watch.exists(topic):
            raise TopicMissing()
        try:
            async with asyncio.timeout(self._delivery_timeout_s):
                futures = [
                    await self._producer.send(topic, value, key=key, headers=headers)
                    for key, value, headers in records
                ]
                del records  # queued in the client's batches: not kept alive across the wait
                await asyncio.gather(*futures)
        except TimeoutError:
            raise KafkaUnavailable() from None
        except (KafkaError, KafkaTimeoutError) as exc:
            raise _error_for(exc) from None

    async def _fetch_topics(self, _topic: str | None) -> set[str]:
        cluster = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), self._metadata_timeout_s)
        return set(cluster.topics())
