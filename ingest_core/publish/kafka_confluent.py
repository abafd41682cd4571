"""Publisher on confluent-kafka (librdkafka): idempotent, acks=all, lz4, a short linger.

Two producers when their lingers differ: requests of one event go to one that lingers a fraction of
a millisecond, requests of several events to one that lingers ``KAFKA_BATCH_LINGER_MS`` (5 ms), so
the broker gets fewer, larger produce requests where a few milliseconds are a small part of the
request's time. Everything below holds for each of them.

Delivery reports are polled on the event loop itself (``poll(0)`` after each request's records are
queued, and as soon as librdkafka signals new ones through a pipe, see ``ingest_core.publish.rdkafka_wakeup``;
where that cannot be had, about every millisecond while anything is in flight), so callbacks run
on the loop thread and resolve futures directly: no poll thread fighting the loop for the GIL, no
``call_soon_threadsafe``. One future per request, counted down per record, is resolved when the
last record of the request is acknowledged or the first fails.

Every request waits at most the same time, so the waits expire in the order they began: one queue
swept by the idle poll replaces a timer per request (``asyncio.wait_for`` costs more).

Cluster metadata (readiness, missing topics, fail-fast while Kafka is silent) comes from a
``TopicWatch`` fed by ``list_topics`` in a thread.

A producer librdkafka declares failed for good (a fatal error of the idempotent producer, raised by
``poll()``: it sends nothing more) is replaced by a new one, so the gateway recovers without a
restart. Until then it is not ready and answers 503. The failed one is polled until every record it
held is reported on (acknowledged, or failed: its requests get their 200 or 503 as Kafka decided),
then let go. Replacements that follow each other within a minute wait 1, 2, 4... up to 30 s.
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

from ingest_core.errors import KafkaUnavailable, Overloaded, PayloadTooLarge, TopicMissing
from ingest_core.kafka import client_settings
from ingest_core.publish.base import ProducerOptions
from ingest_core.publish.rdkafka_wakeup import ReportWakeup
from ingest_core.publish.topic_watch import TopicWatch
from ingest_core.record import OutRecord

log = logging.getLogger(__name__)

_POLL_INTERVAL_S = 0.001
_IDLE_POLL_INTERVAL_S = 0.1
_CLIENT_ID = "ingest-gateway"  # the producer of single-event requests (and of all, when shared)
_BULK_CLIENT_ID = "ingest-gateway-batches"
_MAX_RESTART_DELAY_S = 30.0
_RESTART_CALM_S = 60.0  # a replacement this long after the last one is made at once
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
        self._queue_bound = options.max_inflight_events  # queue.buffering.max.messages
        # Requests of one event go to a producer that lingers a fraction of a millisecond (their
        # latency is the request's); requests of several to one that lingers longer, so that
        # Kafka gets fewer, larger produce requests (bench/NOTES.md). One producer serves
        # both when the two lingers are the same.
        self._producer = self._new_producer(_CLIENT_ID, options.linger_ms)
        self._bulk = (
            self._producer
            if options.batch_linger_ms in (None, options.linger_ms)
            else self._new_producer(_BULK_CLIENT_ID, options.batch_linger_ms)
        )
        self._producers = (self._producer,) if self._bulk is self._producer else (self._producer, self._bulk)
        self._wakeups: list[ReportWakeup] = []
        # Producers failed for good: those awaiting their replacement, and those replaced but still
        # holding records to report on (with their wake-up, if any).
        self._failed: list[Producer] = []
        self._retiring: list[tuple[Producer, ReportWakeup | None]] = []
        self.restarts = 0
        self._last_restart = -float("inf")
        self._restart_delay_s = 0.0
        # Whether reports must be polled on a timer while anything is in flight: until every
        # producer has its wake-up pipe.
        self._timer_polls = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll_handle: asyncio.TimerHandle | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._metadata_timeout_s = options.metadata_timeout_ms / 1000
        self._watch = TopicWatch(self._fetch_topics, refresh_s=options.metadata_refresh_s)
        # (deadline, future) per waiting request, oldest first; see the module docstring.
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()

    def _new_producer(self, client_id: str, linger_ms: float) -> Producer:
        options = self._options
        return Producer(
            client_settings(
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
                    "message.max.bytes": options.max_record_bytes,
                    "error_cb": self._on_error,
                    "logger": logging.getLogger("librdkafka"),
                }
            )
        )

    def _queued(self) -> int:
        """Records queued or in flight, not yet reported on, over every producer."""
        return sum(len(producer) for producer in self._producers) + sum(len(p) for p, _ in self._retiring)

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Wait for Kafka's first metadata answer; raises KafkaUnavailable if it does not come."""
        self._loop = asyncio.get_running_loop()
        await self._watch.start()
        # Only once Kafka has answered: a start that fails leaves no pipe behind (nor a reference
        # to the producer's queue, which would hold up its destruction).
        if self._options.report_wakeup == "pipe":
            for producer, client_id in zip(self._producers, (_CLIENT_ID, _BULK_CLIENT_ID), strict=False):
                self._attach_wakeup(producer, client_id)
            self._timer_polls = len(self._wakeups) < len(self._producers)
        log.info(
            "delivery reports served %s", "on a timer" if self._timer_polls else "on librdkafka's signal"
        )
        self._idle_task = asyncio.create_task(self._idle_poll_loop())

    async def close(self, flush_timeout_s: float = 10.0) -> None:
        """Deliver what is queued (bounded), then stop the background work."""
        deadline = time.monotonic() + flush_timeout_s
        while self._queued() > 0 and time.monotonic() < deadline:
            self._serve_all()
            await asyncio.sleep(0.01)
        if self._queued() > 0:
            log.error("closing with %d records not acknowledged by Kafka", self._queued())
        self._failed.clear()  # no replacement after this
        await self._watch.close()
        for wakeup in [*self._wakeups, *(w for _p, w in self._retiring if w is not None)]:
            wakeup.close()
        self._wakeups.clear()
        self._retiring.clear()
        self._timer_polls = True  # anything reported later is served by the idle poll
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_task
        if self._poll_handle is not None:
            self._poll_handle.cancel()

    # Publishing ------------------------------------------------------------------------------

    def ready(self) -> bool:
        return self._watch.kafka_ok and not self._failed

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        if not self.ready():
            raise KafkaUnavailable()
        if topic not in self._watch.topics and not await self._watch.exists(topic):
            raise TopicMissing()
        loop = self._loop
        assert loop is not None, "publish() before start()"
        producer = self._bulk if len(records) > 1 else self._producer
        # All or nothing: the queue's bound is met before any record is queued, rather than by
        # produce() part-way through the request (BufferError below: then the records before it go
        # out although the request is answered 503). The bound counts the records of requests
        # already answered that are still queued (after a delivery timeout); the in-flight bounds
        # (gateway.admission) keep the rest under it.
        if len(producer) + len(records) > self._queue_bound:
            self._schedule_poll()
            raise Overloaded()
        future: asyncio.Future[None] = loop.create_future()
        delivery = _Delivery(future, len(records))
        produce = producer.produce
        for key, value, headers in records:
            try:
                # Positional (topic, value, key, partition, callback, on_delivery, timestamp,
                # headers): keywords cost more per record to match. -1 is "any partition"
                # (the key decides), 0 "now": the defaults.
                produce(topic, value, key, -1, delivery, None, 0, headers)
            except BufferError:
                # (Not met above: librdkafka counts a little differently.) Nobody will wait for this
                # request now: its queued records' reports are ignored, but they are still served
                # promptly, so the queue drains for the next requests.
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
        try:
            producer.poll(0)
        except KafkaException as exc:
            # This request's records are reported on by the failed producer all the same.
            self._on_poll_error(producer, exc)
        self._schedule_poll()
        # librdkafka fails each record after message.timeout.ms; the extra second only guards
        # against a report that never comes.
        self._waiting.append((time.monotonic() + self._delivery_timeout_s + 1.0, future))
        await future

    # Polling ---------------------------------------------------------------------------------

    def _schedule_poll(self) -> None:
        if self._poll_handle is None and self._timer_polls and self._loop is not None:
            self._poll_handle = self._loop.call_later(_POLL_INTERVAL_S, self._poll)

    def _serve(self, producer: Producer) -> None:
        try:
            producer.poll(0)
        except KafkaException as exc:
            self._on_poll_error(producer, exc)

    def _serve_all(self) -> None:
        for producer in self._producers:
            self._serve(producer)
        for producer, wakeup in list(self._retiring):
            self._serve(producer)
            if len(producer) == 0:  # every record it held reported on: let it go
                self._retiring.remove((producer, wakeup))
                if wakeup is not None:
                    wakeup.close()

    def _poll(self) -> None:
        self._poll_handle = None
        self._serve_all()
        if self._queued() > 0:
            self._schedule_poll()

    async def _idle_poll_loop(self) -> None:
        # Error callbacks and late reports arrive even when no request is waiting.
        failing = False
        while True:
            await asyncio.sleep(_IDLE_POLL_INTERVAL_S)
            self._expire_waits(time.monotonic())
            # This task is the only deadline of a wait whose report never comes: nothing may end it.
            try:
                self._serve_all()
            except Exception:
                if not failing:  # logged once per run of failures, not ten times a second
                    log.exception("serving Kafka's reports failed; going on")
                failing = True
            else:
                failing = False

    def _expire_waits(self, now: float) -> None:
        waiting = self._waiting
        while waiting and (waiting[0][1].done() or waiting[0][0] <= now):
            _deadline, future = waiting.popleft()
            if not future.done():
                future.set_exception(KafkaUnavailable())

    def _on_error(self, err: KafkaError) -> None:
        # Only errors librdkafka recovers from come here: confluent-kafka raises a fatal one from
        # poll() instead (see _on_poll_error).
        log.debug("Kafka client error: %s", err.str())

    # Fatal errors ----------------------------------------------------------------------------

    def _on_poll_error(self, producer: Producer, exc: KafkaException) -> None:
        """A fatal error raised by ``producer.poll()``: replace the producer. Anything else raised
        there (it never is) goes on up."""
        err = exc.args[0] if exc.args else None
        if not isinstance(err, KafkaError) or not err.fatal():
            raise exc
        if producer not in self._producers or producer in self._failed:
            return
        self._failed.append(producer)
        self.restarts += 1
        now = time.monotonic()
        calm = now - self._last_restart >= _RESTART_CALM_S
        self._restart_delay_s = (
            0.0 if calm else min(max(2 * self._restart_delay_s, 1.0), _MAX_RESTART_DELAY_S)
        )
        self._last_restart = now
        log.error(
            "Kafka producer failed for good (%s): replacing it in %.0f s, requests answered 503 until then",
            err.str(), self._restart_delay_s,
        )  # fmt: skip
        assert self._loop is not None, "poll() before start()"
        self._loop.call_later(self._restart_delay_s, self._replace, producer)
        # poll() stopped serving reports at the error: serve the rest now, not at the next tick.
        self._loop.call_soon(self._serve_all)

    def _replace(self, failed: Producer) -> None:
        if failed not in self._failed:
            return  # closed meanwhile
        self._failed.remove(failed)
        shared = self._bulk is self._producer
        if failed is self._producer:
            client_id, new = _CLIENT_ID, self._new_producer(_CLIENT_ID, self._options.linger_ms)
            self._producer = new
            if shared:
                self._bulk = new
        else:
            linger = self._options.batch_linger_ms
            assert linger is not None, "a producer of its own for batches has its own linger"
            client_id, new = _BULK_CLIENT_ID, self._new_producer(_BULK_CLIENT_ID, linger)
            self._bulk = new
        self._producers = (self._producer,) if self._bulk is self._producer else (self._producer, self._bulk)
        wakeup = next((w for w in self._wakeups if w.producer is failed), None)
        if wakeup is not None:
            self._wakeups.remove(wakeup)
            if not self._attach_wakeup(new, client_id):
                self._timer_polls = True
        self._retiring.append((failed, wakeup))
        log.info("Kafka producer %s replaced", client_id)
        self._serve_all()

    def _attach_wakeup(self, producer: Producer, client_id: str) -> bool:
        assert self._loop is not None, "before start()"
        wakeup = ReportWakeup.attach(self._loop, producer, client_id, serve=lambda: self._serve(producer))
        if wakeup is not None:
            self._wakeups.append(wakeup)
        return wakeup is not None

    # Metadata --------------------------------------------------------------------------------

    async def _fetch_topics(self, topic: str | None) -> set[str]:
        meta = await asyncio.to_thread(
            self._producer.list_topics, topic=topic, timeout=self._metadata_timeout_s
        )
        return {name for name, info in meta.topics.items() if info.error is None}
