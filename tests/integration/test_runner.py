"""The shared consumer loop against real Kafka: when a polled batch is handed over."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from confluent_kafka import Message, Producer

from consumers.runner import BatchRunner
from ingest_core.kafka import TopicSpec, ensure_topics
from tests.support.kafka import unique


async def test_a_batch_that_does_not_fill_waits_only_its_linger(kafka_bootstrap: str) -> None:
    # One consume(batch_size, timeout) returns when the batch is full or its timeout is out: at a
    # low rate every record waited out the whole poll timeout before being written. Here that
    # timeout is 40 s, and the records must be handed over well before it.
    topic = unique("ingest.linger")
    ensure_topics(kafka_bootstrap, [TopicSpec(topic, 1)])
    batches: asyncio.Queue[list[bytes]] = asyncio.Queue()

    async def handle(messages: Sequence[Message]) -> bool:
        batches.put_nowait([m.value() or b"" for m in messages])
        return True

    runner = BatchRunner(
        kafka_bootstrap,
        unique("linger"),
        [topic],
        handle,
        batch_size=5000,
        poll_timeout_s=40,
        linger_s=0.02,
    )
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    running = asyncio.create_task(runner.run())
    try:
        for value in (b"one", b"two", b"three"):
            producer.produce(topic, value)
        assert producer.flush(30) == 0
        handed: list[bytes] = []
        while len(handed) < 3:
            handed += await asyncio.wait_for(batches.get(), timeout=20)
        assert handed == [b"one", b"two", b"three"]
    finally:
        runner.stop()
        # The loop is waiting for a first message for up to 40 s: give it one to return.
        producer.produce(topic, b"wake")
        producer.flush(30)
        await asyncio.wait_for(running, timeout=60)
