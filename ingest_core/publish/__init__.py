"""Publishing records to Kafka, the same way for every program: acknowledged only once Kafka has
them (``acks=all``, idempotent producers), with bounded waits and honest errors.

- ``base``: the ``Publisher`` protocol and the options every publisher takes;
- ``kafka_confluent``: the default publisher, on confluent-kafka (librdkafka);
- ``kafka_aiokafka``: the pure-Python alternative, on aiokafka;
- ``rdkafka_wakeup``: how librdkafka's delivery reports wake the event loop;
- ``topic_watch``: which topics exist, and whether Kafka answers.
"""

from __future__ import annotations

from ingest_core.publish.base import DEFAULT_MAX_RECORD_BYTES, ProducerOptions, Publisher

PUBLISHERS = ("confluent", "aiokafka")

__all__ = ["DEFAULT_MAX_RECORD_BYTES", "PUBLISHERS", "ProducerOptions", "Publisher", "open_publisher"]


def open_publisher(kind: str, options: ProducerOptions) -> Publisher:
    """A publisher of the kind named (one of ``PUBLISHERS``), not yet started."""
    if kind == "aiokafka":
        from ingest_core.publish.kafka_aiokafka import AiokafkaPublisher

        return AiokafkaPublisher(options)
    if kind == "confluent":
        from ingest_core.publish.kafka_confluent import ConfluentPublisher

        return ConfluentPublisher(options)
    raise ValueError(f"unknown publisher {kind!r}: expected one of {', '.join(PUBLISHERS)}")
