"""The shared consumer loop: poll a batch, hand it over, commit only once it is fully handled.

No auto-commit. The batch handler returns only when every record is persisted or dead-lettered
(it retries on its own); only then are that batch's offsets committed — explicitly, per batch and
in poll order. A crash at any instant therefore redelivers at most the uncommitted batches, which
idempotent writes make harmless.

Up to ``max_in_flight`` batches are handled at once, so that decoding one batch overlaps the
database writing the previous one (otherwise the sink and the database take turns, each idle
half the time), and no batch is polled while the values of those in flight reach ``max_in_flight_bytes``:
the count alone would let large records hold gigabytes (8 batches of 5,000 records of 1 MiB). A
batch is polled whole, so the bytes in flight stay below that bound plus one poll, which
librdkafka's prefetch queue bounds in its turn. The loop commits asynchronously, between polls. A
rebalance runs inside a poll: its revoke callback waits until every batch in flight is persisted,
then commits them synchronously from the polling thread, so partitions are given up with everything
done on them committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ingest_core.kafka import DYNAMIC, Membership, client_settings

log = logging.getLogger(__name__)
# Poll errors repeat for as long as Kafka is away: ingest_core.log_repeats bounds this logger.
poll_log = logging.getLogger("consumers.runner.poll")

BatchHandler = Callable[[Sequence[Message]], Coroutine[Any, Any, bool]]

FETCH_QUEUE_BACKOFF_MS = 10  # see the consumer's configuration in BatchRunner


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
        linger_s: float = 0.02,
        client_id: str = "ingest-consumer",
        max_in_flight: int = 2,
        max_in_flight_bytes: int = 64 * 1024 * 1024,
        revoke_wait_s: float = 60.0,
        after_poll: Callable[[Consumer, list[TopicPartition]], None] | None = None,
        membership: Membership = DYNAMIC,
    ) -> None:
        self._topics = list(topics)
        self._resubscribe: list[str] | None = None
        self._handle = handle
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
        self._linger_s = linger_s
        self._max_in_flight = max_in_flight
        self._max_in_flight_bytes = max_in_flight_bytes
        # Called on the loop between polls, the only time anything but the poll may use the
        # consumer: librdkafka serialises calls such as position() with the rebalance callback,
        # which waits for the batches in flight, so a batch must never call the consumer itself.
        self._after_poll = after_poll
        self._revoke_wait_s = revoke_wait_s
        # Batches in poll order: their offsets, the task persisting them (True: done; False:
        # abandoned because the service is stopping) and their values' bytes. Shared with the
        # revoke callback.
        self._pending: deque[tuple[list[TopicPartition], asyncio.Task[bool], int]] = deque()
        self._lock = threading.Lock()
        # Set while every pending batch is persisted; the revoke callback waits on it.
        self._all_persisted = threading.Event()
        self._all_persisted.set()
        self.consumer = Consumer(
            client_settings(
                {
                    "bootstrap.servers": bootstrap,
                    "group.id": group,
                    "client.id": client_id,
                    **membership.settings(),
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    # A store outage is retried without polling; allow it 10 minutes before the group
                    # considers this member gone (its batch is then redelivered, harmlessly).
                    "max.poll.interval.ms": 600_000,
                    # Once a partition's prefetch queue passes its bound (queued.min.messages,
                    # queued.max.messages.kbytes: both left as they are), librdkafka fetches that
                    # partition again only after this backoff, 1,000 ms by default, although the queue
                    # drains in a fraction of it: a backlog was read with the consumer idle most of
                    # the time (figures: bench/NOTES.md, "fetch.queue.backoff.ms").
                    "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
                    "logger": logging.getLogger("librdkafka.consumer"),
                    "on_commit": self._on_commit,
                }
            )
        )
        self.assigned: list[TopicPartition] = []
        self.kafka_ok = False
        self._down_since: float | None = None  # since when Kafka has been unreachable, if it is
        self._stopping = False

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)
        log.info("assigned %d partitions", len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # On the polling thread, inside consume(): the loop is waiting for this poll, so nothing
        # else commits now. Wait until what is in flight is persisted, then commit it here.
        if not self._all_persisted.wait(self._revoke_wait_s):
            # A batch is still retrying (store down): give the partitions up anyway; its records
            # are redelivered to their next owner and stored once.
            log.warning("revoking partitions while a batch is still being persisted")
        with self._lock:
            while self._pending and _persisted(self._pending[0][1]):
                offsets, _task, _size = self._pending.popleft()
                try:
                    consumer.commit(offsets=offsets, asynchronous=False)
                except KafkaException as exc:
                    log.info("commit on revoke skipped: %s", exc)
        revoked = {(p.topic, p.partition) for p in partitions}
        self.assigned = [tp for tp in self.assigned if (tp.topic, tp.partition) not in revoked]
        log.info("revoked %d partitions", len(partitions))

    def stop(self) -> None:
        self._stopping = True

    def subscribe(self, topics: list[str]) -> None:
        """Consume ``topics`` from the next poll on (a reloaded registry's)."""
        self._resubscribe = list(topics)

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def run(self) -> None:
        """Poll, handle, commit until ``stop()``; then close the consumer (leaving the group)."""
        self.consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stopping:
                messages = await asyncio.to_thread(self._poll)
                # One method call per message rather than a function call: errors are rare.
                batch = [m for m in messages if m.error() is None]
                if len(batch) < len(messages):
                    self._note_errors(messages)
                if batch:
                    self.kafka_ok = True
                    if self._down_since is not None:
                        log.info("Kafka answers again, after %.0f s", time.monotonic() - self._down_since)
                        self._down_since = None
                    self._start(batch)
                if not await self._commit_persisted(room_for=1):
                    return  # stopping before a batch was handled: it stays uncommitted
                if self._after_poll is not None:
                    self._after_poll(self.consumer, self.assigned)
        finally:
            self._stopping = True
            # Let every batch in flight finish (persisted, or abandoned while retrying), then
            # commit the persisted ones from the head: nothing may use the store after this.
            in_flight = [task for _offsets, task, _size in self._pending]
            if in_flight:
                await asyncio.wait(in_flight)
            with contextlib.suppress(Exception):
                await self._commit_persisted(room_for=self._max_in_flight)
            self._all_persisted.set()
            await asyncio.to_thread(self.consumer.close)

    def _poll(self) -> list[Message]:
        """A batch: wait up to the poll timeout for its first message, then up to the linger for
        the rest; return at once when it is full.

        One ``consume(batch_size, timeout)`` waits out its whole timeout unless the batch fills
        (librdkafka's timeout is for the batch), so at low rates every record waited up to the
        poll timeout to be written. Under a backlog the fetch queue holds a full batch
        and neither call waits.

        A rebalance may run inside either call: the first call's messages may then belong to a
        partition just revoked. They are persisted and committed anyway, which is harmless: the
        writes are idempotent and the commit covers only records this batch persists.
        """
        topics, self._resubscribe = self._resubscribe, None
        if topics is not None and topics != self._topics:
            # On the polling thread, between two polls: the group rebalances onto the new topics.
            self._topics = topics
            self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        first = self.consumer.consume(1, self._poll_timeout_s)
        if not first or self._batch_size == 1:
            return first
        rest = self.consumer.consume(self._batch_size - 1, self._linger_s)
        return first + rest

    def _start(self, batch: list[Message]) -> None:
        # A partition's messages come in offset order, so its last one is its highest: no max()
        # per message. (Were they not, the commit would be lower, and only cause a redelivery.)
        last: dict[tuple[str | None, int | None], int | None] = {}
        for msg in batch:
            last[(msg.topic(), msg.partition())] = msg.offset()
        offsets = [
            TopicPartition(topic or "", partition or 0, (offset or 0) + 1)
            for (topic, partition), offset in last.items()
        ]
        size = sum(map(len, batch))  # the values' bytes (Message.__len__)
        task = asyncio.create_task(self._handle(batch))
        with self._lock:
            self._pending.append((offsets, task, size))
            self._all_persisted.clear()
        task.add_done_callback(self._on_task_done)

    def _on_task_done(self, _task: asyncio.Task[bool]) -> None:
        with self._lock:
            if all(task.done() for _offsets, task, _size in self._pending):
                self._all_persisted.set()

    async def _commit_persisted(self, room_for: int) -> bool:
        """Commit persisted batches from the head, in poll order, until at most ``max_in_flight -
        room_for`` remain in flight, holding less than ``max_in_flight_bytes`` (waiting for the
        oldest as needed). False: a batch was abandoned.
        """
        while True:
            with self._lock:
                if not self._pending:
                    return True
                offsets, task, _size = self._pending[0]
                crowded = (
                    len(self._pending) > self._max_in_flight - room_for
                    # At most max_in_flight batches: summed each time rather than kept.
                    or sum(size for _offsets, _task, size in self._pending) >= self._max_in_flight_bytes
                )
            if not task.done():
                if not crowded:
                    return True
                await asyncio.wait({task})
            if not task.result():
                return False
            self._commit(offsets)
            with self._lock:
                if self._pending and self._pending[0][1] is task:
                    self._pending.popleft()

    def _note_errors(self, messages: list[Message]) -> None:
        """Log the errors polled among ``messages``, and note whether Kafka is reachable."""
        for msg in messages:
            err = msg.error()
            if err is not None and err.code() != KafkaError._PARTITION_EOF:
                down = err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
                if down and self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("Kafka is unreachable: %s", err.str())
                else:
                    poll_log.warning("consumer error: %s", err.str())
                self.kafka_ok = not down

    def _commit(self, offsets: list[TopicPartition]) -> None:
        # Asynchronous: a synchronous commit issued while the group rebalances waits until this
        # member rejoins, which it can only do by polling: a deadlock. A commit that fails is
        # covered by the next one or by the revoke callback's; a lost one means a redelivery,
        # which the idempotent writes absorb.
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            log.info("commit not sent: %s", exc)

    @staticmethod
    def _on_commit(err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            log.info(
                "commit of %d partitions failed (covered by a later one): %s", len(partitions), err.str()
            )


def _persisted(task: asyncio.Task[bool]) -> bool:
    """Did this batch's task finish with its records persisted? (Safe from another thread once done.)"""
    return task.done() and not task.cancelled() and task.exception() is None and task.result()
