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


async def _most_batches_at_once(kafka_bootstrap: str, max_in_flight_bytes: int) -> tuple[int, int]:
    """Twelve 100 KiB records, polled up to 2 at a time with up to 4 batches in flight, each batch
    held for 0.2 s: the most batches handled at once, and the most bytes of values they held."""
    topic = unique("ingest.inflight")
    ensure_topics(kafka_bootstrap, [TopicSpec(topic, 1)])
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(12):
        producer.produce(topic, bytes([i]) * 100 * 1024)
    assert producer.flush(30) == 0
    handled: list[bytes] = []
    all_handled = asyncio.Event()
    now = {"batches": 0, "bytes": 0}
    most = {"batches": 0, "bytes": 0}

    async def handle(messages: Sequence[Message]) -> bool:
        size = sum(len(m.value() or b"") for m in messages)
        now["batches"] += 1
        now["bytes"] += size
        most["batches"] = max(most["batches"], now["batches"])
        most["bytes"] = max(most["bytes"], now["bytes"])
        await asyncio.sleep(0.2)
        handled.extend(m.value() or b"" for m in messages)
        now["batches"] -= 1
        now["bytes"] -= size
        if len(handled) == 12:
            all_handled.set()
        return True

    runner = BatchRunner(
        kafka_bootstrap, unique("inflight"), [topic], handle,
        batch_size=2, max_in_flight=4, max_in_flight_bytes=max_in_flight_bytes,
    )  # fmt: skip
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(all_handled.wait(), timeout=60)
    finally:
        runner.stop()
        await asyncio.wait_for(running, timeout=60)
    assert sorted(handled) == [bytes([i]) * 100 * 1024 for i in range(12)]
    return most["batches"], most["bytes"]


async def test_batches_in_flight_are_bounded_by_their_bytes(kafka_bootstrap: str) -> None:
    bound = 300 * 1024
    # A batch is 1 or 2 records (100 or 200 KiB): none is polled once those in flight hold 300 KiB,
    # so they hold less than 300 KiB plus one batch.
    batches, held = await _most_batches_at_once(kafka_bootstrap, max_in_flight_bytes=bound)
    assert held < bound + 200 * 1024
    assert batches < 4
    # By their count alone (a byte bound far above), the same batches held more than that.
    batches, held = await _most_batches_at_once(kafka_bootstrap, max_in_flight_bytes=1 << 30)
    assert held >= bound + 200 * 1024
