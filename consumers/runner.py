"""The shared consumer loop: poll a batch, hand it over, commit only once it is fully handled.

No auto-commit. The batch handler returns only when every record is persisted or dead-lettered
(it retries on its own); only then are the consumed positions committed. A crash at any instant
therefore redelivers at most the uncommitted batch, which idempotent writes make harmless.

Batches are handled one at a time, between polls: when a rebalance revokes partitions (its
callbacks run inside the poll), everything consumed before has already been committed.
"""

from __future__ import annotations

import asyncio
import logging
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
    ) -> None:
        self._topics = list(topics)
        self._handle = handle
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
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
        # Nothing is pending here: the previous batch was committed before this poll began.
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
                if not batch:
                    continue
                self.kafka_ok = True
                if not await self._handle(batch):
                    return  # stopping before the batch was handled: it stays uncommitted
                await self._commit()
        finally:
            await asyncio.to_thread(self.consumer.close)

    def _usable(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", err.str())
            self.kafka_ok = err.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
        return False

    async def _commit(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.consumer.commit, asynchronous=False)
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
