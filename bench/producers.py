"""The raw producer limit: the gateway's records, produced flat out by each Kafka client we can use.

The records are the gateway's own (``bench.payloads.records``): its values, its keys and its three
headers, as the issue's "the same records" asks. ``plain`` (a fifth argument) sends what this
harness sent until 2026-11-23: the values alone, keyed over 1,000 keys, no headers; measured for
reference (see bench/NOTES.md).

Same settings for both: acks=all, idempotence, lz4, linger 5 ms. Measured as the gateway is: records
acknowledged by Kafka per second over ``SECONDS``, after a 2 s warm-up (the connection, the broker's
JIT). Run as a child process: ``python -m bench.producers confluent|aiokafka BOOTSTRAP TOPIC
SECONDS [plain]``; prints one JSON line.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson

from bench.payloads import record_value, records
from ingest_core.record import OutRecord

_DISTINCT = 1000
_WARM_UP_S = 2.0


class _Window:
    """Acknowledged records counted at the start and the end of the measured window."""

    def __init__(self, seconds: float) -> None:
        self.acked = 0
        self.failed = 0
        now = time.perf_counter()
        self.start_at, self.end_at = now + _WARM_UP_S, now + _WARM_UP_S + seconds
        self._marks: list[tuple[float, int]] = []

    def tick(self) -> bool:
        """Record a mark when a boundary is passed; False once the window is over."""
        now = time.perf_counter()
        if not self._marks and now >= self.start_at:
            self._marks.append((now, self.acked))
        if len(self._marks) == 1 and now >= self.end_at:
            self._marks.append((now, self.acked))
        return len(self._marks) < 2

    def rate(self) -> float:
        if self.failed:
            raise RuntimeError(f"{self.failed} records failed")
        (t0, n0), (t1, n1) = self._marks
        return (n1 - n0) / (t1 - t0)


def _records(plain: bool) -> list[OutRecord]:
    if not plain:
        return records(_DISTINCT)
    return [OutRecord(f"user-{i:05d}".encode(), record_value(i), []) for i in range(_DISTINCT)]


def confluent(bootstrap: str, topic: str, seconds: float, plain: bool) -> float:
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
    batch = _records(plain)
    window = _Window(seconds)

    def on_delivery(err: object, _msg: object) -> None:
        if err is None:
            window.acked += 1
        else:
            window.failed += 1

    i = 0
    while True:
        try:
            key, value, headers = batch[i % _DISTINCT]
            # Positional, as the gateway calls it (keywords cost ~0.5 µs more per record).
            producer.produce(topic, value, key, -1, on_delivery, None, 0, headers or None)
        except BufferError:
            producer.poll(0.005)
            continue
        i += 1
        if i % 1000 == 0:
            producer.poll(0)
            if not window.tick():
                break
    producer.flush(60)
    return window.rate()


async def aiokafka(bootstrap: str, topic: str, seconds: float, plain: bool) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, compression_type="lz4"
    )
    await producer.start()
    batch = _records(plain)
    window = _Window(seconds)
    try:
        pending: list[asyncio.Future[object]] = []
        i = 0
        while True:
            key, value, headers = batch[i % _DISTINCT]
            pending.append(await producer.send(topic, value, key=key, headers=headers or None))
            i += 1
            if len(pending) >= 20_000:
                # Acknowledgements counted by the oldest 2,000 (a callback per record would slow
                # the client down); the rest keeps its pipeline full. gather() raises on a failure.
                await asyncio.gather(*pending[:2_000])
                del pending[:2_000]
                window.acked += 2_000
                if not window.tick():
                    break
        await asyncio.gather(*pending)
        return window.rate()
    finally:
        await producer.stop()


def main() -> None:
    client, bootstrap, topic, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    plain = sys.argv[5:] == ["plain"]
    if client == "confluent":
        rate = confluent(bootstrap, topic, seconds, plain)
    else:
        rate = asyncio.run(aiokafka(bootstrap, topic, seconds, plain))
    size = sum(len(record.value) for record in _records(plain)) / _DISTINCT
    print(orjson.dumps({"records_per_s": rate, "mb_per_s": rate * size / 1e6}).decode())


if __name__ == "__main__":
    main()
