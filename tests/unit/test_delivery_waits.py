"""The confluent publisher's guard against a delivery report that never comes: waits expire in order.

Pure: no broker is contacted (librdkafka connects lazily and nothing is produced).
"""

from __future__ import annotations

import asyncio

from ingest_core.errors import KafkaUnavailable
from ingest_core.publish.base import ProducerOptions
from ingest_core.publish.kafka_confluent import ConfluentPublisher


async def test_expired_waits_fail_and_done_ones_are_dropped() -> None:
    publisher = ConfluentPublisher(
        ProducerOptions(
            bootstrap="127.0.0.1:1", delivery_timeout_ms=1000, metadata_timeout_ms=1000,
            linger_ms=0.2, compression="none", max_inflight_events=1000,
        )
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    answered, expired, later = loop.create_future(), loop.create_future(), loop.create_future()
    answered.set_result(None)
    publisher._waiting.extend([(10.0, answered), (20.0, expired), (30.0, later)])

    publisher._expire_waits(now=25.0)

    assert answered.result() is None
    assert isinstance(expired.exception(), KafkaUnavailable)
    assert not later.done()
    assert [f for _, f in publisher._waiting] == [later]
