"""The confluent publisher against real Kafka: single-event and multi-event requests take their own
producers (each with its linger), both reach Kafka, and closing delivers what either has queued;
a full queue is refused at once; reports wake the loop through librdkafka's pipe, or a timer."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from ingest_core.errors import KafkaUnavailable, Overloaded
from ingest_core.kafka import TopicSpec, ensure_topics
from ingest_core.publish.base import ProducerOptions
from ingest_core.publish.kafka_confluent import ConfluentPublisher
from ingest_core.publish.rdkafka_wakeup import ReportWakeup
from ingest_core.record import OutRecord
from tests.support.kafka import fail_for_good, read_topic, unique

pytestmark = pytest.mark.integration


def _options(
    bootstrap: str, linger_ms: float, batch_linger_ms: float | None, max_inflight_events: int = 10_000
) -> ProducerOptions:
    return ProducerOptions(
        bootstrap=bootstrap, delivery_timeout_ms=10_000, metadata_timeout_ms=3_000,
        linger_ms=linger_ms, compression="lz4", max_inflight_events=max_inflight_events,
        batch_linger_ms=batch_linger_ms,
        # CI runs these tests once more with KAFKA_REPORT_WAKEUP=timer (tests of either way set it).
        report_wakeup=os.environ.get("KAFKA_REPORT_WAKEUP") or "pipe",
    )  # fmt: skip


def _records(name: str, count: int) -> list[OutRecord]:
    return [
        OutRecord(
            key=name.encode(), value=f'{{"n":"{name}:{i}"}}'.encode(), headers=[("msgid", name.encode())]
        )
        for i in range(count)
    ]


def _create_topic(bootstrap: str, topic: str) -> None:
    ensure_topics(bootstrap, [TopicSpec(topic, 3)])


async def test_each_kind_of_request_takes_its_own_producer_and_close_delivers_both(
    kafka_bootstrap: str,
) -> None:
    topic = unique("ingest.publisher")
    await asyncio.to_thread(_create_topic, kafka_bootstrap, topic)
    # Lingers long enough that nothing can have left either producer when the queues are looked at.
    publisher = ConfluentPublisher(_options(kafka_bootstrap, linger_ms=400, batch_linger_ms=600))
    await publisher.start()
    single = asyncio.create_task(publisher.publish(topic, _records("single", 1)))
    batch = asyncio.create_task(publisher.publish(topic, _records("batch", 5)))
    # Both tasks run up to their wait for Kafka: at once when the topic is already known, after a
    # metadata round trip when the broker had not yet listed it at start. Either way the records
    # are then queued, and stay so for the linger.
    for _ in range(500):
        await asyncio.sleep(0.01)
        if publisher._queued() == 6:
            break

    assert publisher._bulk is not publisher._producer
    assert (len(publisher._producer), len(publisher._bulk)) == (1, 5)

    # Closing (as at SIGTERM) waits out both lingers and both acknowledgements.
    await publisher.close()
    assert publisher._queued() == 0
    await asyncio.wait_for(asyncio.gather(single, batch), timeout=5)
    messages = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 6)
    assert sorted((m.value() or b"").decode() for m in messages) == sorted(
        [f'{{"n":"single:{0}"}}'] + [f'{{"n":"batch:{i}"}}' for i in range(5)]
    )


async def test_equal_lingers_share_one_producer(kafka_bootstrap: str) -> None:
    topic = unique("ingest.publisher")
    await asyncio.to_thread(_create_topic, kafka_bootstrap, topic)
    publisher = ConfluentPublisher(_options(kafka_bootstrap, linger_ms=0.2, batch_linger_ms=0.2))
    await publisher.start()
    try:
        assert publisher._bulk is publisher._producer
        await asyncio.wait_for(publisher.publish(topic, _records("batch", 3)), timeout=15)
        await asyncio.wait_for(publisher.publish(topic, _records("single", 1)), timeout=15)
    finally:
        await publisher.close()
    messages = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 4)
    assert len(messages) == 4


async def test_a_request_that_would_overfill_the_queue_is_refused_whole_at_once(kafka_bootstrap: str) -> None:
    # The gateway bounds the events of the requests it is handling before they get here; the queue's
    # bound also covers records still queued for requests already answered (after a timeout).
    topic = unique("ingest.publisher")
    await asyncio.to_thread(_create_topic, kafka_bootstrap, topic)
    # Batches linger long enough for the first request's records to be still queued.
    publisher = ConfluentPublisher(_options(kafka_bootstrap, 0.2, 1_500.0, max_inflight_events=1000))
    await publisher.start()
    try:
        first = asyncio.create_task(publisher.publish(topic, _records("first", 600)))
        await _until(lambda: len(publisher._bulk) == 600, 5)
        started = time.monotonic()
        with pytest.raises(Overloaded):
            await publisher.publish(topic, _records("too-many", 500))
        assert time.monotonic() - started < 1
        assert len(publisher._bulk) == 600  # none of it queued (before: 400 of it, sent after a 503)
        await asyncio.wait_for(first, timeout=15)
        await asyncio.wait_for(publisher.publish(topic, _records("after", 10)), timeout=15)
    finally:
        await publisher.close()
    messages = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 611, 5.0)  # 610, and no more
    names = [(m.value() or b"").decode().split(":")[1].strip('"') for m in messages]
    assert (names.count("first"), names.count("too-many"), names.count("after")) == (600, 0, 10)


async def test_reports_wake_the_loop_through_librdkafkas_pipe(kafka_bootstrap: str) -> None:
    topic = unique("ingest.publisher")
    await asyncio.to_thread(_create_topic, kafka_bootstrap, topic)
    publisher = ConfluentPublisher(replace(_options(kafka_bootstrap, 0.2, 5.0), report_wakeup="pipe"))
    await publisher.start()
    try:
        # Both producers signal through their pipes: no timer polls at all.
        assert (len(publisher._wakeups), publisher._timer_polls) == (2, False)
        for _ in range(3):
            await asyncio.wait_for(publisher.publish(topic, _records("single", 1)), timeout=15)
            await asyncio.wait_for(publisher.publish(topic, _records("batch", 5)), timeout=15)
        assert publisher._poll_handle is None
        # Each producer's reports (from its first wait on) arrived through its pipe.
        assert all(wakeup.wakeups >= 1 for wakeup in publisher._wakeups)
        wakeups = list(publisher._wakeups)
    finally:
        await publisher.close()
    assert publisher._wakeups == []
    assert all(wakeup._queue is None for wakeup in wakeups)  # signalling off, queue released
    messages = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 18)
    assert len(messages) == 18


async def test_reports_are_polled_on_a_timer_when_asked_or_when_the_handle_does_not_check_out(
    kafka_bootstrap: str,
) -> None:
    topic = unique("ingest.publisher")
    await asyncio.to_thread(_create_topic, kafka_bootstrap, topic)
    publisher = ConfluentPublisher(replace(_options(kafka_bootstrap, 0.2, 5.0), report_wakeup="timer"))
    await publisher.start()
    try:
        assert (publisher._wakeups, publisher._timer_polls) == ([], True)
        await asyncio.wait_for(publisher.publish(topic, _records("timer", 3)), timeout=15)
        # A producer whose handle does not name the client id given is refused, not written to.
        loop = asyncio.get_running_loop()
        assert ReportWakeup.attach(loop, publisher._producer, "someone-else") is None
    finally:
        await publisher.close()
    assert len(await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 3)) == 3


async def test_a_loop_that_cannot_watch_pipes_keeps_the_timer(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()

    def no_pipes(*_args: object) -> None:
        raise NotImplementedError("add_reader")  # as Windows' proactor loop answers

    monkeypatch.setattr(loop, "add_reader", no_pipes)
    topic = unique("ingest.publisher")
    await asyncio.to_thread(_create_topic, kafka_bootstrap, topic)
    publisher = ConfluentPublisher(_options(kafka_bootstrap, 0.2, 5.0))
    await publisher.start()
    try:
        assert (publisher._wakeups, publisher._timer_polls) == ([], True)
        await asyncio.wait_for(publisher.publish(topic, _records("timer", 2)), timeout=15)
    finally:
        await publisher.close()


async def test_a_start_that_fails_leaves_no_pipe_behind() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    publisher = ConfluentPublisher(replace(_options(dead, 0.2, 5.0), metadata_timeout_ms=500))
    with pytest.raises(KafkaUnavailable):
        await publisher.start()
    assert (publisher._wakeups, publisher._timer_polls) == ([], True)


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.01)


async def test_a_producer_failed_for_good_is_replaced_and_its_requests_answered(kafka_bootstrap: str) -> None:
    topic = unique("ingest.publisher")
    await asyncio.to_thread(_create_topic, kafka_bootstrap, topic)
    # Single events linger long enough to be still queued when their producer fails.
    publisher = ConfluentPublisher(
        replace(_options(kafka_bootstrap, linger_ms=2_000, batch_linger_ms=5.0), report_wakeup="pipe")
    )
    await publisher.start()
    try:
        await asyncio.wait_for(publisher.publish(topic, _records("before", 5)), timeout=15)
        failed = publisher._producer
        queued = asyncio.create_task(publisher.publish(topic, _records("queued", 1)))
        await _until(lambda: len(failed) == 1, 5)
        fail_for_good(failed, "ingest-gateway")
        # Its request is answered as soon as the producer gives its records up, not at the timeout
        # (10 s): 503, as they never reached Kafka.
        with pytest.raises(KafkaUnavailable):
            await asyncio.wait_for(queued, timeout=5)
        # The first replacement is made at once.
        await _until(lambda: publisher._producer is not failed and publisher.ready(), 5)
        assert publisher.restarts == 1
        await asyncio.wait_for(publisher.publish(topic, _records("after", 5)), timeout=15)  # a batch
        await _until(lambda: publisher._retiring == [], 5)  # the failed one let go
        # The new producer has a pipe of its own; the failed one's is closed.
        assert [wakeup.producer for wakeup in publisher._wakeups] == [publisher._bulk, publisher._producer]

        # Failing again within a minute: the replacement waits (1 s), and meanwhile requests are
        # refused at once rather than queued on a producer that sends nothing.
        again = publisher._producer
        fail_for_good(again, "ingest-gateway")
        await _until(lambda: not publisher.ready(), 5)
        with pytest.raises(KafkaUnavailable):
            await asyncio.wait_for(publisher.publish(topic, _records("refused", 1)), timeout=1)
        await _until(lambda: publisher.ready(), 5)
        assert (publisher.restarts, publisher._producer is not again) == (2, True)
        await asyncio.wait_for(publisher.publish(topic, _records("last", 1)), timeout=15)
    finally:
        await publisher.close()
    messages = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 12, 5.0)  # 11, and no more
    names = sorted((m.value() or b"").decode().split(":")[1].strip('"') for m in messages)
    assert names == ["after"] * 5 + ["before"] * 5 + ["last"]


async def test_the_idle_poll_outlives_an_error_and_still_ends_overdue_waits(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The idle poll is what ends a wait whose report never comes: an error while serving reports
    # must not end it (a fatal error once did, through poll()).
    topic = unique("ingest.publisher")
    await asyncio.to_thread(_create_topic, kafka_bootstrap, topic)
    publisher = ConfluentPublisher(replace(_options(kafka_bootstrap, 0.2, 5.0), delivery_timeout_ms=1_000))
    await publisher.start()
    try:
        failures = 0

        def failing() -> None:
            nonlocal failures
            failures += 1
            raise RuntimeError("serving failed")

        monkeypatch.setattr(publisher, "_serve_all", failing)
        future = asyncio.get_running_loop().create_future()
        publisher._waiting.append((time.monotonic() + 0.3, future))  # a report that never comes
        with pytest.raises(KafkaUnavailable):
            await asyncio.wait_for(future, timeout=5)
        await _until(lambda: failures >= 3, 5)
        assert publisher._idle_task is not None
        assert not publisher._idle_task.done()
    finally:
        monkeypatch.undo()
        await publisher.close()
