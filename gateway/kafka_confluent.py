"""Publisher on confluent-kafka (librdkafka): idempotent, acks=all, lz4, a short linger.

Two producers when their lingers differ: requests of one event go to one that lingers a fraction of
a millisecond, requests of several events to one that lingers ``KAFKA_BATCH_LINGER_MS`` (5 ms), so
the broker gets fewer, larger produce requests where a few milliseconds are a small part of the
request's time. Everything below holds for each of them.

Delivery reports are polled on the event loop itself (``poll(0)`` after each request's records are
queued, and as soon as librdkafka signals new ones through a pipe, see ``gateway.rdkafka_wakeup``;
where that cannot be had, about every millisecond while anything is in flight), so callbacks run
on the loop thread and resolve futures directly: no poll thread fighting the loop for the GIL, no
``call_soon_threadsafe``. One future per request, counted down per record, is resolved when the
last record of the request is acknowledged or the first fails.

Every request waits at most the same time, so the waits expire in the order they began: one queue
swept by the idle poll replaces a timer per request (``asyncio.wait_for`` cost ~3 µs per request).

Cluster metadata (readiness, missing topics, fail-fast while Kafka is silent) comes from a
``TopicWatch`` fed by ``list_topics`` in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from gateway.errors import KafkaUnavailable, Overloaded, PayloadTooLarge, TopicMissing
from gateway.publisher import ProducerOptions
from gateway.rdkafka_wakeup import ReportWakeup
from gateway.topic_watch import TopicWatch
from ingest_core.record import OutRecord

log = logging.getLogger(__name__)

_POLL_INTERVAL_S = 0.001
_IDLE_POLL_INTERVAL_S = 0.1
_TOPIC_MISSING_CODES = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})
_TOO_LARGE_CODES = frozenset({KafkaError.MSG_SIZE_TOO_LARGE})


def _error_for(err: KafkaError) -> Exception:
    code = err.code()
    if code in _TOPIC_MISSING_CODES:
        return TopicMissing()
    if code in _TOO_LARGE_CODES:
        return PayloadTooLarge("An event exceeds Kafka's maximum record size")
    return KafkaUnavailable()


class _Delivery:
    """Counts down the delivery reports of one request's records; resolves its one future."""

    __slots__ = ("future", "remaining")

    def __init__(self, future: asyncio.Future[None], count: int) -> None:
        self.future = future
        self.remaining = count

    def __call__(self, err: KafkaError | None, _msg: Any) -> None:
        self.remaining -= 1
        if self.future.done():
            return
        if err is not None:
            self.future.set_exception(_error_for(err))
        elif self.remaining == 0:
            self.future.set_result(None)


class ConfluentPublisher:
    def __init__(self, options: ProducerOptions) -> None:
        self._delivery_timeout_s = options.delivery_timeout_ms / 1000
        self._options = options
        # Requests of one event go to a producer that lingers a fraction of a millisecond (their
        # latency is the request's); requests of several to one that lingers longer, so that
        # Kafka gets fewer, larger produce requests (see README, Performance). One producer serves
        # both when the two lingers are the same.
        self._producer = self._new_producer("ingest-gateway", options.linger_ms)
        self._bulk = (
            self._producer
            if options.batch_linger_ms in (None, options.linger_ms)
            else self._new_producer("ingest-gateway-batches", options.batch_linger_ms)
        )
        self._producers = (self._producer,) if self._bulk is self._producer else (self._producer, self._bulk)
        self._wakeups: list[ReportWakeup] = []
        # Whether reports must be polled on a timer while anything is in flight: until every
        # producer has its wake-up pipe.
        self._timer_polls = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll_handle: asyncio.TimerHandle | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._metadata_timeout_s = options.metadata_timeout_ms / 1000
        self._watch = TopicWatch(self._fetch_topics, refresh_s=options.metadata_refresh_s)
        self._fatal: str | None = None
        # (deadline, future) per waiting request, oldest first; see the module docstring.
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()

    def _new_producer(self, client_id: str, linger_ms: float) -> Producer:
        options = self._options
        return Producer(
            {
                "bootstrap.servers": options.bootstrap,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": linger_ms,
                "socket.nagle.disable": True,
                "compression.type": options.compression,
                "message.timeout.ms": options.delivery_timeout_ms,
                # How long an unknown topic is waited for before its records fail: bounded, so a
                # deleted topic gives a prompt 404 rather than a delivery timeout.
                "topic.metadata.propagation.max.ms": options.metadata_timeout_ms,
                "queue.buffering.max.messages": options.max_inflight_events,
                "queue.buffering.max.kbytes": 1024 * 1024,
                "error_cb": self._on_error,
                "logger": logging.getLogger("librdkafka"),
            }
        )

    def _queued(self) -> int:
        """Records queued or in flight, not yet reported on, over both producers."""
        return sum(len(producer) for producer in self._producers)

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Wait for Kafka's first metadata answer; raises KafkaUnavailable if it does not come."""
        self._loop = asyncio.get_running_loop()
        await self._watch.start()
        # Only once Kafka has answered: a start that fails leaves no pipe behind (nor a reference
        # to the producer's queue, which would hold up its destruction).
        if self._options.report_wakeup == "pipe":
            client_ids = ("ingest-gateway", "ingest-gateway-batches")
            for producer, client_id in zip(self._producers, client_ids, strict=False):
                wakeup = ReportWakeup.attach(self._loop, producer, client_id)
                if wakeup is not None:
                    self._wakeups.append(wakeup)
            self._timer_polls = len(self._wakeups) < len(self._producers)
        log.info(
            "delivery reports served %s", "on a timer" if self._timer_polls else "on librdkafka's signal"
        )
        self._idle_task = asyncio.create_task(self._idle_poll_loop())

    async def close(self, flush_timeout_s: float = 10.0) -> None:
        """Deliver what is queued (bounded), then stop the background work."""
        deadline = time.monotonic() + flush_timeout_s
        while self._queued() > 0 and time.monotonic() < deadline:
            for producer in self._producers:
                producer.poll(0)
            await asyncio.sleep(0.01)
        if self._queued() > 0:
            log.error("closing with %d records not acknowledged by Kafka", self._queued())
        await self._watch.close()
        for wakeup in self._wakeups:
            wakeup.close()
        self._wakeups.clear()
        self._timer_polls = True  # anything reported later is served by the idle poll
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_task
        if self._poll_handle is not None:
            self._poll_handle.cancel()

    # Publishing ------------------------------------------------------------------------------

    def ready(self) -> bool:
        return self._watch.kafka_ok and self._fatal is None

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        if not self.ready():
            raise KafkaUnavailable()
        if topic not in self._watch.topics and not await self._watch.exists(topic):
            raise TopicMissing()
        loop = self._loop
        assert loop is not None, "publish() before start()"
        future: asyncio.Future[None] = loop.create_future()
        delivery = _Delivery(future, len(records))
        producer = self._bulk if len(records) > 1 else self._producer
        produce = producer.produce
        for key, value, headers in records:
            try:
                # Positional (topic, value, key, partition, callback, on_delivery, timestamp,
                # headers): keywords cost ~0.5 µs more per record to match. -1 is "any partition"
                # (the key decides), 0 "now": the defaults.
                produce(topic, value, key, -1, delivery, None, 0, headers)
            except BufferError:
                # Nobody will wait for this request now: its queued records' reports are ignored,
                # but they are still served promptly, so the queue drains for the next requests.
                future.cancel()
                self._schedule_poll()
                raise Overloaded() from None
            except KafkaException as exc:
                future.cancel()
                self._schedule_poll()
                raise _error_for(exc.args[0]) from None
        # librdkafka has copied them, and the caller holds no reference (see routes/ingest.py): the
        # request's records are freed now, not after the wait.
        del records
        # Serve the reports that are already in: under load they arrive while other requests are
        # being handled, and answering them now rather than at the next timer tick (uvloop's
        # timers tick in whole milliseconds) keeps the loop busy instead of in lockstep with Kafka.
        producer.poll(0)
        self._schedule_poll()
        # librdkafka fails each record after message.timeout.ms; the extra second only guards
        # against a report that never comes.
        self._waiting.append((time.monotonic() + self._delivery_timeout_s + 1.0, future))
        await future

    # Polling ---------------------------------------------------------------------------------

    def _schedule_poll(self) -> None:
        if self._poll_handle is None and self._timer_polls and self._loop is not None:
            self._poll_handle = self._loop.call_later(_POLL_INTERVAL_S, self._poll)

    def _poll(self) -> None:
        self._poll_handle = None
        pending = False
        for producer in self._producers:
            producer.poll(0)
            pending = pending or len(producer) > 0
        if pending:
            self._schedule_poll()

    async def _idle_poll_loop(self) -> None:
        # Error callbacks and late reports arrive even when no request is waiting.
        while True:
            await asyncio.sleep(_IDLE_POLL_INTERVAL_S)
            for producer in self._producers:
                producer.poll(0)
            self._expire_waits(time.monotonic())

    def _expire_waits(self, now: float) -> None:
        waiting = self._waiting
        while waiting and (waiting[0][1].done() or waiting[0][0] <= now):
            _deadline, future = waiting.popleft()
            if not future.done():
                future.set_exception(KafkaUnavailable())

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err.str()
            log.error("fatal Kafka producer error, restart needed: %s", err.str())
        else:
            log.debug("Kafka client error: %s", err.str())

    # Metadata --------------------------------------------------------------------------------

    async def _fetch_topics(self, topic: str | None) -> set[str]:
        meta = await asyncio.to_thread(
            self._producer.list_topics, topic=topic, timeout=self._metadata_timeout_s
        )
        return {name for name, info in meta.topics.items() if info.error is None}
