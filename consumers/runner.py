"""The shared consumer loop: poll a batch, hand it over, commit only once it is fully handled.

No auto-commit. The batch handler returns only when every record is persisted or dead-lettered
(it retries on its own); only then are that batch's offsets committed — explicitly, per batch and
in poll order. A crash at any instant therefore redelivers at most the uncommitted batches, which
idempotent writes make harmless.

Up to ``max_in_flight`` batches are handled at once, so that decoding one batch overlaps the
database writing the previous one (measured: the sink and PostgreSQL otherwise take turns at ~50%
CPU each). Each batch commits only after its predecessor has. A rebalance runs inside the poll; its
revoke callback waits until no batch is in flight, so partitions are given up with everything done
on them committed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Message]], Awaitable[bool]]


class BatchRunner:
    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        handle: BatchHandler,
        *,
        batch_size: int = 2000,
        poll_timeout_s: float = 0.5,
        client_id: str = "ingest-consumer",
        max_in_flight: int = 2,
        revoke_wait_s: float = 60.0,
    ) -> None:
        self._topics = list(topics)
        self._handle = handle
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
        self._max_in_flight = max_in_flight
        self._revoke_wait_s = revoke_wait_s
        self._in_flight: deque[asyncio.Task[bool]] = deque()
        # Set while no batch is in flight; the revoke callback (on the poll thread) waits on it.
        self._idle = threading.Event()
        self._idle.set()
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": client_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # A store outage is retried without polling; allow it 10 minutes before the group
                # considers this member gone (its batch is then redelivered, harmlessly).
                "max.poll.interval.ms": 600_000,
                "logger": logging.getLogger("librdkafka.consumer"),
            }
        )
        self.assigned: list[TopicPartition] = []
        self.kafka_ok = False
        self._stopping = False

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)
        log.info("assigned %d partitions", len(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self._idle.wait(self._revoke_wait_s):
            # A batch is still retrying (store down): give the partitions up anyway; its records
            # are redelivered to their next owner and stored once.
            log.warning("revoking partitions while a batch is still being persisted")
        self.assigned = [tp for tp in self.assigned if (tp.topic, tp.partition) not in
                         {(p.topic, p.partition) for p in partitions}]  # fmt: skip
        log.info("revoked %d partitions", len(partitions))

    def stop(self) -> None:
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def run(self) -> None:
        """Poll, handle, commit until ``stop()``; then close the consumer (leaving the group)."""
        self.consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stopping:
                messages = await asyncio.to_thread(
                    self.consumer.consume, self._batch_size, self._poll_timeout_s
                )
                batch = [m for m in messages if self._usable(m)]
                if batch:
                    self.kafka_ok = True
                    self._start(batch)
                while self._in_flight and (
                    len(self._in_flight) >= self._max_in_flight or self._in_flight[0].done()
                ):
                    if not await self._in_flight.popleft():
                        return  # stopping before a batch was handled: it stays uncommitted
        finally:
            self._stopping = True
            while self._in_flight:
                await self._in_flight.popleft()
            self._idle.set()
            await asyncio.to_thread(self.consumer.close)

    def _start(self, batch: list[Message]) -> None:
        self._idle.clear()
        previous = self._in_flight[-1] if self._in_flight else None
        task = asyncio.create_task(self._handle_and_commit(batch, previous))
        task.add_done_callback(self._maybe_idle)
        self._in_flight.append(task)

    def _maybe_idle(self, _task: asyncio.Task[bool]) -> None:
        if all(t.done() for t in self._in_flight):
            self._idle.set()

    async def _handle_and_commit(self, batch: list[Message], previous: asyncio.Task[bool] | None) -> bool:
        handled = await self._handle(batch)
        # Commits follow poll order: a batch's offsets never pass a predecessor's unpersisted ones.
        if previous is not None and not await asyncio.shield(previous):
            return False
        if not handled:
            return False
        await self._commit(batch)
        return True

    def _usable(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", err.str())
            self.kafka_ok = err.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
        return False

    async def _commit(self, batch: Sequence[Message]) -> None:
        ends: dict[tuple[str, int], int] = {}
        for msg in batch:
            key = (msg.topic() or "", msg.partition() or 0)
            ends[key] = max(ends.get(key, 0), (msg.offset() or 0) + 1)
        offsets = [TopicPartition(topic, partition, end) for (topic, partition), end in ends.items()]
        while True:
            try:
                await asyncio.to_thread(self.consumer.commit, offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                err: Any = exc.args[0] if exc.args else None
                code = err.code() if isinstance(err, KafkaError) else None
                if code in (KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS,
                            KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID):  # fmt: skip
                    # The partitions moved on; their new owner re-reads from the last commit.
                    log.info("commit skipped: %s", exc)
                    return
                if self._stopping:
                    return
                log.warning("commit failed, retrying: %s", exc)
                await asyncio.sleep(0.5)
            else:
                return
