"""The raw producer limit: the gateway's records, produced flat out by each Kafka client we can use.

Same settings for both: acks=all, idempotence, lz4, linger 5 ms. Run as a child process:
``python -m bench.producers confluent|aiokafka BOOTSTRAP TOPIC COUNT``; prints one JSON line.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson

from bench.payloads import record_value

_DISTINCT = 1000


def confluent(bootstrap: str, topic: str, count: int) -> float:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    values = [record_value(i) for i in range(_DISTINCT)]
    keys = [f"user-{i:05d}".encode() for i in range(_DISTINCT)]
    failed = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    start = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, values[i % _DISTINCT], keys[i % _DISTINCT], on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.005)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"{failed} records failed")
    return elapsed


async def aiokafka(bootstrap: str, topic: str, count: int) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, compression_type="lz4"
    )
    await producer.start()
    values = [record_value(i) for i in range(_DISTINCT)]
    keys = [f"user-{i:05d}".encode() for i in range(_DISTINCT)]
    try:
        start = time.perf_counter()
        pending = []
        for i in range(count):
            pending.append(await producer.send(topic, values[i % _DISTINCT], key=keys[i % _DISTINCT]))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.perf_counter() - start
    finally:
        await producer.stop()


def main() -> None:
    client, bootstrap, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if client == "confluent":
        elapsed = confluent(bootstrap, topic, count)
    else:
        elapsed = asyncio.run(aiokafka(bootstrap, topic, count))
    size = sum(len(record_value(i)) for i in range(_DISTINCT)) / _DISTINCT
    print(orjson.dumps({"records_per_s": count / elapsed, "mb_per_s": count * size / elapsed / 1e6}).decode())


if __name__ == "__main__":
    main()
