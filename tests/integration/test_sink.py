"""The record sink against real Kafka and real SQLite / PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in its __all__
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from ingest_core.kafka import TopicSpec, admin_client, ensure_topics
from ingest_core.record import build_value
from ingest_core.registry import Registry, load_registry
from ingest_core.topics_cli import DLQ_MAX_MESSAGE_BYTES, dlq_topic_spec
from tests.support.gateway import EXAMPLE_SCHEMA, envelope, running_gateway, write_registry
from tests.support.http import TLS_CLIENT_HELLO
from tests.support.kafka import ROOT, fail_for_good, free_port_pair, read_topic, unique
from tests.support.postgres import LocalPostgres
from tests.support.proc import children_of, running
from tests.support.sink import SinkHandle, metric_value, running_sink
from tests.support.store import count_rows, fetch_rows, wait_for_rows, wait_until_rows

pytestmark = pytest.mark.integration


def datasets_for(topic: str) -> list[dict[str, Any]]:
    return [
        {"id": "example", "entry_topic": topic, "schema": str(EXAMPLE_SCHEMA), "key": "eid", "partitions": 3}
    ]


async def make_registry(bootstrap: str, tmp_path: Path, topic: str, dlq: str | None = None) -> Registry:
    registry = load_registry(write_registry(tmp_path / "sink-topics.yaml", datasets_for(topic)))
    specs = [TopicSpec(topic, 3)] + ([dlq_topic_spec(dlq)] if dlq else [])
    await asyncio.to_thread(ensure_topics, bootstrap, specs)
    return registry


def produce_records(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]], pace_per_s: float = 0
) -> None:
    """Produce (key, value) pairs straight into a topic, optionally paced, and wait for every ack."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    start = time.monotonic()
    for i, (key, value) in enumerate(records):
        if pace_per_s and i % 100 == 0:
            ahead = i / pace_per_s - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        producer.produce(topic, value, key)
        producer.poll(0)
    assert producer.flush(30) == 0


async def start_stream(
    kafka_bootstrap: str, tmp_path: Path, name: str, total: int, per_s: float
) -> tuple[Registry, str, threading.Thread]:
    """A fresh topic and registry, and a thread producing ``total`` records into it at ``per_s``.

    Returns the registry, a SQLite store URL of the test's own, and the (started) thread.
    """
    topic = unique(f"ingest.{name}")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic)
    records: list[tuple[bytes | None, bytes]] = [native_record(i, msgid=name) for i in range(total)]
    stream = threading.Thread(target=produce_records, args=(kafka_bootstrap, topic, records, per_s))
    stream.start()
    return registry, f"sqlite:///{tmp_path / (name + '.db')}", stream


def assert_each_event_once(rows: list[dict[str, Any]], msgid: str, total: int) -> None:
    """Every event of a stream from ``start_stream``/``native_record`` is a row, and only once."""
    ids = [r["event_id"] for r in rows]
    assert len(ids) == total
    assert set(ids) == {f"{msgid}:{i}" for i in range(total)}


def native_record(i: int, msgid: str = "native", dataset: str = "example") -> tuple[bytes, bytes]:
    value = build_value(dataset, msgid, f"{msgid}:{i}", {"eid": f"E{i}", "n": i}, 1_700_000_000_000 + i)
    return f"E{i}".encode(), value


def produce_between_good_ones(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    """native_record(0), then (key, value), then native_record(1), all on partition 0: "around" is
    literal order. Up to the broker's default size limit."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 1_048_576})
    for k, v in [native_record(0), (key, value), native_record(1)]:
        producer.produce(topic, v, k, partition=0)
    assert producer.flush(30) == 0


async def wait_for_a_held_batch(sink: SinkHandle, store_url: str) -> None:
    """Until the sink reports a failed write; then nothing of the batch is stored and it is not ready."""
    deadline = time.monotonic() + 30
    while metric_value(await sink.metrics(), "sink_store_errors_total") < 1:
        assert time.monotonic() < deadline, "the failed write was not reported"
        await asyncio.sleep(0.2)
    assert await count_rows(store_url) == 0  # nothing of the batch is done, nothing committed
    assert await sink.ready_status() == 503


# 1,048,320 bytes, not JSON: within ~200 bytes of the most an entry topic takes at the broker's default
# limit (which is on the whole record batch), so its dead letter, with the added headers, would not fit.
NEAR_LIMIT_GARBAGE = bytes(range(256)) * 4_095


async def test_gateway_to_row_single_and_batch(kafka_bootstrap: str, tmp_path: Path, store_url: str) -> None:
    topic = unique("ingest.e2e")
    async with running_gateway(kafka_bootstrap, datasets_for(topic), tmp_path) as gw:
        registry = gw.registry
        async with running_sink(kafka_bootstrap, registry, store_url):
            before = datetime.now(UTC)
            assert (await gw.post("example", envelope({"eid": "ONE", "x": 1}, msgid="single-1")))[0] == 200
            batch = [{"eid": f"B{i}", "i": i} for i in range(100)]
            assert (await gw.post("example", envelope(batch, msgid="batch-1")))[0] == 200
            rows = await wait_for_rows(store_url, 101, timeout_s=30)
    assert len(rows) == 101
    by_id = {r["event_id"]: r for r in rows}
    assert set(by_id) == {"single-1"} | {f"batch-1:{i}" for i in range(100)}
    single = by_id["single-1"]
    assert single["dataset"] == "example"
    assert single["msgid"] == "single-1"
    event = single["event"]
    assert orjson.loads(event) == {"eid": "ONE", "x": 1}  # JSON text from both stores
    assert single["topic"] == topic
    assert 0 <= single["partition"] < 3
    assert single["offset"] >= 0
    received = single["received_at"]
    persisted = single["persisted_at"]
    if isinstance(received, str):  # SQLite keeps ISO 8601 text with its offset
        received, persisted = datetime.fromisoformat(received), datetime.fromisoformat(persisted)
    assert received.tzinfo is not None
    assert persisted.tzinfo is not None
    assert before.timestamp() - 1 <= received.timestamp() <= persisted.timestamp() + 0.001
    assert orjson.loads(by_id["batch-1:42"]["event"]) == {"eid": "B42", "i": 42}


async def test_events_are_stored_as_they_were_sent(
    kafka_bootstrap: str, tmp_path: Path, store_url: str
) -> None:
    # The gateway forwards each event's JSON as it came (the raw path) and the sink stores it as the
    # record holds it: spacing, escapes and integers beyond 64 bits are kept (PostgreSQL's jsonb
    # keeps the value and writes its own text).
    topic = unique("ingest.sent")
    events = [
        b'{ "eid" : "a",\n  "big": 123456789012345678901234567890, "e": "caf\\u00e9", "n": 1E2 }',
        b'{"eid":"b","nested":{"k":[1,2.50,"x"]}}',
    ]
    body = (
        b'{"id": "api.data.in", "ver": "v2", "ts": "1", "params": {"msgid": "sent-1"}, "data": [\n  %s\n]}'
        % (b",\n  ".join(events))
    )
    async with running_gateway(kafka_bootstrap, datasets_for(topic), tmp_path) as gw:
        async with running_sink(kafka_bootstrap, gw.registry, store_url):
            assert (await gw.post("example", None, raw=body))[0] == 200
            rows = await wait_for_rows(store_url, 2, timeout_s=30)
    by_id = {r["event_id"]: r["event"] for r in rows}
    assert set(by_id) == {"sent-1:0", "sent-1:1"}
    for i, event in enumerate(events):
        stored = by_id[f"sent-1:{i}"]
        assert json.loads(stored) == json.loads(event)
        if store_url.startswith("sqlite"):
            assert stored == event.decode()
    assert json.loads(by_id["sent-1:0"])["big"] == 123456789012345678901234567890


async def test_same_msgid_twice_gives_one_row_per_event(
    kafka_bootstrap: str, tmp_path: Path, store_url: str
) -> None:
    topic = unique("ingest.dup")
    async with running_gateway(kafka_bootstrap, datasets_for(topic), tmp_path) as gw:
        async with running_sink(kafka_bootstrap, gw.registry, store_url) as sink:
            body = envelope([{"eid": "a"}, {"eid": "b"}, {"eid": "c"}], msgid="retry-1")
            assert (await gw.post("example", body))[0] == 200
            assert (await gw.post("example", body))[0] == 200
            assert (await gw.post("example", envelope({"eid": "z"}, msgid="retry-2")))[0] == 200
            assert (await gw.post("example", envelope({"eid": "z"}, msgid="retry-2")))[0] == 200
            # 8 records on Kafka; wait until all were written (persisted or found to exist already:
            # "consumed" counts a record before its batch is written), then count rows.
            deadline = time.monotonic() + 30
            while True:
                text = await sink.metrics()
                written = metric_value(text, "sink_records_persisted_total") + metric_value(
                    text, "sink_duplicates_ignored_total"
                )
                if written >= 8:
                    break
                assert time.monotonic() < deadline, "sink did not write the 8 records"
                await asyncio.sleep(0.2)
    rows = await fetch_rows(store_url)
    assert sorted(r["event_id"] for r in rows) == ["retry-1:0", "retry-1:1", "retry-1:2", "retry-2"]
    assert metric_value(text, "sink_duplicates_ignored_total") == 4
    assert "sink_consumer_lag{partition=" in text  # updated between polls


async def test_bad_records_go_to_the_dlq_and_good_ones_around_them_persist(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'dlq.db'}"
    topic, dlq = unique("ingest.dlqsrc"), unique("ingest.dlq")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic, dlq)
    bad_schema = build_value("example", "bad-3", "bad-3", {"eid": 42}, 1_700_000_000_000)
    records: list[tuple[bytes | None, bytes]] = [
        native_record(0),
        (b"k-garbage", b"\x00\xff not json at all"),
        native_record(1),
        (b"k-shape", orjson.dumps({"dataset": "example", "hello": "world"})),
        native_record(2),
        (b"k-schema", bad_schema),
        (b"k-unknown", build_value("nosuch", "u-1", "u-1", {"eid": "x"}, 1)),
        # Once enough to stop the sink (a RecursionError), on every restart.
        (b"k-deep", b'{"dataset": "example", "msgid": "d", "event_id": "d", "event": {"eid": "E", "x": '
         + b'{"x":' * 1_010 + b"1" + b"}" * 1_010 + b'}, "obsrv_meta": {"syncts": 1}}'),
        native_record(3),
    ]  # fmt: skip
    # Partition by key: put all on partition 0 so "around them" is literal order.
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for key, value in records:
        producer.produce(topic, value, key, partition=0, headers=[("origin", b"native-test")])
    assert producer.flush(30) == 0
    async with running_sink(kafka_bootstrap, registry, store_url, dlq_topic=dlq) as sink:
        rows = await wait_for_rows(store_url, 4, timeout_s=30)
        letters = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 5, 30.0)
        text = await sink.metrics()
    assert sorted(r["event_id"] for r in rows) == [f"native:{i}" for i in range(4)]
    assert len(letters) == 5
    by_key = {m.key(): m for m in letters}
    assert set(by_key) == {b"k-garbage", b"k-shape", b"k-schema", b"k-unknown", b"k-deep"}
    assert by_key[b"k-garbage"].value() == b"\x00\xff not json at all"  # original bytes
    for key, reason, fragment in [
        (b"k-garbage", b"not_json", b"not valid JSON"),
        (b"k-shape", b"bad_record", b"record: #required should have required property 'msgid'"),
        (b"k-schema", b"schema", b"event: #properties/eid/type should be string"),
        (b"k-unknown", b"unknown_dataset", b"unknown dataset 'nosuch'"),
        (b"k-deep", b"bad_record", b"event: nested too deeply"),
    ]:
        headers = dict(by_key[key].headers() or [])
        assert headers["dlq.reason"] == reason
        assert fragment in (headers["dlq.error"] or b"")
        assert headers["dlq.source.topic"] == topic.encode()
        assert headers["dlq.source.partition"] == b"0"
        assert headers["origin"] == b"native-test"  # original headers kept
    assert int(dict(by_key[b"k-garbage"].headers() or [])["dlq.source.offset"] or b"-1") == 1
    assert metric_value(text, "sink_records_dead_lettered_total") == 5


async def test_a_nul_character_is_dead_lettered_on_every_store(
    kafka_bootstrap: str, tmp_path: Path, store_url: str
) -> None:
    # U+0000 is valid JSON, but PostgreSQL's jsonb and text refuse it: such a batch was retried
    # forever, and the sink stuck on it. Refused on SQLite too, so the rows do not depend on the store.
    topic, dlq = unique("ingest.nul"), unique("ingest.dlq")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic, dlq)
    records: list[tuple[bytes | None, bytes]] = [
        native_record(0),
        (b"k-nul", build_value("example", "nul", "nul:0", {"eid": "E", "note": "a\x00b"}, 1)),
        native_record(1),
        # A backslash followed by "u0000" is text like any other.
        (b"k-text", build_value("example", "text", "text:0", {"eid": "E", "note": "\\u0000"}, 1)),
    ]
    await asyncio.to_thread(produce_records, kafka_bootstrap, topic, records)
    async with running_sink(kafka_bootstrap, registry, store_url, dlq_topic=dlq):
        rows = await wait_for_rows(store_url, 3, timeout_s=30)
        [letter] = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 1, 30.0)
    assert sorted(r["event_id"] for r in rows) == ["native:0", "native:1", "text:0"]
    headers = dict(letter.headers() or [])
    assert (letter.key(), headers["dlq.reason"]) == (b"k-nul", b"bad_record")
    assert b"U+0000" in (headers["dlq.error"] or b"")


async def test_rows_the_store_refuses_are_dead_lettered_and_the_rest_persist(
    kafka_bootstrap: str, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The decoder's U+0000 check switched off stands for any row it lets through that PostgreSQL
    # will never take: the batch is written by halves and only that row is set aside.
    monkeypatch.setattr("consumers.sink.decode.may_hold_nul", lambda _value: False)
    topic, dlq = unique("ingest.refused"), unique("ingest.dlq")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic, dlq)
    records: list[tuple[bytes | None, bytes]] = [native_record(i) for i in range(40)]
    records.insert(17, (b"k-refused", build_value("example", "r", "r:0", {"eid": "E", "note": "a\x00b"}, 1)))
    await asyncio.to_thread(produce_records, kafka_bootstrap, topic, records)
    async with running_sink(kafka_bootstrap, registry, postgres_url, dlq_topic=dlq) as sink:
        rows = await wait_for_rows(postgres_url, 40, timeout_s=30)
        [letter] = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 1, 30.0)
        text = await sink.metrics()
        ready = await sink.ready_status()
    assert sorted(r["event_id"] for r in rows) == sorted(f"native:{i}" for i in range(40))
    headers = dict(letter.headers() or [])
    assert (letter.key(), headers["dlq.reason"]) == (b"k-refused", b"store_refused")
    assert b"PostgreSQL" in (headers["dlq.error"] or b"")
    assert metric_value(text, 'sink_records_dead_lettered_total{reason="store_refused"}') == 1
    assert ready == 200


def _sink_process(
    bootstrap: str, registry: Registry, store_url: str, group: str, port: int, event_loop: str = "auto",
    **more: str,
) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPICS_FILE": str(registry.path),
        "STORE_URL": store_url,
        "SINK_GROUP": group,
        "SINK_PORT": str(port),
        "SINK_BATCH_SIZE": "500",
        "LOG_LEVEL": "info",
        "EVENT_LOOP": event_loop,
        **more,
    }
    # Its log goes to the store's directory (the test's tmp_path), so a failure can show it.
    log = Path(store_url.removeprefix("sqlite:///")).with_name(f"sink-{port}.log")
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "consumers.sink"], env=env, cwd=ROOT, stdout=out, stderr=out
        )


def _sink_logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(tmp_path.glob("sink-*.log"))
    )


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    total = 20_000
    registry, store_url, stream = await start_stream(kafka_bootstrap, tmp_path, "kill", total, 4000.0)
    group = unique("sink-kill")
    proc = _sink_process(kafka_bootstrap, registry, store_url, group, free_port_pair())
    try:
        seen = await wait_until_rows(store_url, 2000)
        writer = children_of(proc.pid)  # SQLite's writer process (and multiprocessing's tracker)
        assert writer, "the SQLite store runs in a child process"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert seen < total, "the kill must land mid-stream"
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in writer):
            assert time.monotonic() < deadline, "the writer outlived its killed parent"
            await asyncio.sleep(0.1)
        # The second sink runs on asyncio's own loop (EVENT_LOOP), the first on uvloop.
        port = free_port_pair()
        proc = _sink_process(kafka_bootstrap, registry, store_url, group, port, event_loop="asyncio")
        await asyncio.to_thread(stream.join, 60)
        rows = await wait_for_rows(store_url, total, timeout_s=90)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert_each_event_once(rows, "kill", total)
    logs = _sink_logs(tmp_path)
    assert f"listening on http://127.0.0.1:{port} (asyncio)" in logs, logs
    assert "(uvloop)" in logs, logs


async def test_a_sink_killed_and_restarted_resumes_before_its_session_timeout(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A session timeout far longer than the wait allowed below: only static membership (the same
    # SINK_INSTANCE_ID, as a restarted pod or make run has) lets the new process resume in time.
    topic = unique("ingest.static")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic)
    store_url = f"sqlite:///{tmp_path / 'static.db'}"
    group, more = (
        unique("sink-static"),
        {"SINK_INSTANCE_ID": "sink-a", "CONSUMER_SESSION_TIMEOUT_MS": "120000"},
    )
    first: list[tuple[bytes | None, bytes]] = [native_record(i, msgid="static") for i in range(100)]
    await asyncio.to_thread(produce_records, kafka_bootstrap, topic, first, 0)
    proc = _sink_process(kafka_bootstrap, registry, store_url, group, free_port_pair(), **more)
    try:
        await wait_for_rows(store_url, 100, timeout_s=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc = _sink_process(kafka_bootstrap, registry, store_url, group, free_port_pair(), **more)
        started = time.monotonic()
        second: list[tuple[bytes | None, bytes]] = [native_record(i, msgid="static") for i in range(100, 200)]
        await asyncio.to_thread(produce_records, kafka_bootstrap, topic, second, 0)
        rows = await wait_for_rows(store_url, 200, timeout_s=40)
        resumed_s = time.monotonic() - started
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert len(rows) == 200, _sink_logs(tmp_path)  # within a third of the session timeout
    assert_each_event_once(rows, "static", 200)
    print(f"static membership: the restarted sink stored every event {resumed_s:.1f} s after its start")


async def test_sqlite_writer_killed_mid_stream_is_replaced_and_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    total = 6000
    registry, store_url, stream = await start_stream(kafka_bootstrap, tmp_path, "writer", total, 1500.0)
    async with running_sink(kafka_bootstrap, registry, store_url, batch_size=200) as sink:
        await wait_until_rows(store_url, 500)
        writers = [pid for pid in children_of(os.getpid()) if "spawn_main" in _cmdline(pid)]
        assert len(writers) == 1, writers
        os.kill(writers[0], signal.SIGKILL)
        await asyncio.to_thread(stream.join, 60)
        rows = await wait_for_rows(store_url, total, timeout_s=60)
        text = await sink.metrics()
    assert_each_event_once(rows, "writer", total)
    assert metric_value(text, "sink_store_errors_total") >= 1  # the dead writer was noticed


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


async def test_postgres_outage_mid_stream_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path, postgres_server: LocalPostgres | str, postgres_url: str
) -> None:
    if isinstance(postgres_server, str):
        pytest.skip("PG_TEST_URL points at an external server, which this test cannot stop and start")
    total = 6000
    topic = unique("ingest.pgdown")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic)
    records: list[tuple[bytes | None, bytes]] = [native_record(i, msgid="pg") for i in range(total)]
    async with running_sink(kafka_bootstrap, registry, postgres_url, batch_size=200) as sink:
        stream = threading.Thread(target=produce_records, args=(kafka_bootstrap, topic, records, 1500.0))
        stream.start()
        await wait_until_rows(postgres_url, 500)
        await asyncio.to_thread(postgres_server.stop)  # for 10 s
        await asyncio.sleep(5)
        ready_during_outage = await sink.ready_status()
        await asyncio.sleep(5)
        await asyncio.to_thread(postgres_server.start)
        await asyncio.to_thread(stream.join, 60)
        rows = await wait_for_rows(postgres_url, total, timeout_s=60)
        text = await sink.metrics()
    assert_each_event_once(rows, "pg", total)
    assert metric_value(text, "sink_store_errors_total") >= 1, "the outage was not observed"
    assert ready_during_outage == 503


async def test_readme_kafka_native_example_is_persisted(kafka_bootstrap: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    snippet = (
        readme.split("## Producing straight into Kafka", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    )
    topic = unique("ingest.native")
    snippet = snippet.replace("127.0.0.1:9092", kafka_bootstrap).replace('"ingest.example"', repr(topic))
    registry = await make_registry(kafka_bootstrap, tmp_path, topic)
    await asyncio.to_thread(exec, compile(snippet, "README.md", "exec"), {})
    store_url = f"sqlite:///{tmp_path / 'native.db'}"
    async with running_sink(kafka_bootstrap, registry, store_url):
        rows = await wait_for_rows(store_url, 1, timeout_s=30)
    assert [(r["dataset"], r["event_id"], r["msgid"]) for r in rows] == [
        ("example", "batch-2024-05-30-001:0", "batch-2024-05-30-001")
    ]


async def test_a_record_that_cannot_be_dead_lettered_blocks_the_commit_not_the_process(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'nodlq.db'}"
    topic, dlq = unique("ingest.nodlq"), unique("ingest.dlq-later")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic)  # the DLQ topic does not exist yet
    await asyncio.to_thread(produce_between_good_ones, kafka_bootstrap, topic, b"k-bad", b"not json")
    async with running_sink(kafka_bootstrap, registry, store_url, dlq_topic=dlq) as sink:
        await wait_for_a_held_batch(sink, store_url)
        await asyncio.to_thread(ensure_topics, kafka_bootstrap, [dlq_topic_spec(dlq)])
        rows = await wait_for_rows(store_url, 2, timeout_s=60)
        letters = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 1, 30.0)
        assert await sink.ready_status() == 200
    assert sorted(r["event_id"] for r in rows) == ["native:0", "native:1"]
    assert [m.key() for m in letters] == [b"k-bad"]


async def test_a_bad_record_at_the_entry_topics_size_limit_is_dead_lettered_whole(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # The entry topic takes the broker's default limit (~1 MiB). A dead letter is the record plus
    # headers: once, such a record was refused by the dead-letter producer before it was sent, and
    # the error stopped the sink, on every restart.
    store_url = f"sqlite:///{tmp_path / 'big.db'}"
    topic, dlq = unique("ingest.big"), unique("ingest.dlq")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic, dlq)
    await asyncio.to_thread(produce_between_good_ones, kafka_bootstrap, topic, b"k-big", NEAR_LIMIT_GARBAGE)
    async with running_sink(kafka_bootstrap, registry, store_url, dlq_topic=dlq) as sink:
        rows = await wait_for_rows(store_url, 2, timeout_s=30)
        [letter] = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 1, 30.0)
        assert await sink.ready_status() == 200
    assert sorted(r["event_id"] for r in rows) == ["native:0", "native:1"]
    assert (letter.key(), letter.value()) == (b"k-big", NEAR_LIMIT_GARBAGE)
    assert dict(letter.headers() or [])["dlq.reason"] == b"not_json"


async def test_a_dead_letter_too_large_for_an_existing_topic_waits_for_its_limit_to_be_raised(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A dead-letter topic created before it took larger records keeps the broker's default limit.
    store_url = f"sqlite:///{tmp_path / 'small-dlq.db'}"
    topic, dlq = unique("ingest.big"), unique("ingest.dlq-small")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic)
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, [TopicSpec(dlq, 1)])
    await asyncio.to_thread(produce_between_good_ones, kafka_bootstrap, topic, b"k-big", NEAR_LIMIT_GARBAGE)
    async with running_sink(kafka_bootstrap, registry, store_url, dlq_topic=dlq) as sink:
        await wait_for_a_held_batch(sink, store_url)
        # What README's kafka-configs command does; the sink's next retry goes through.
        await asyncio.to_thread(raise_message_limit, kafka_bootstrap, dlq, DLQ_MAX_MESSAGE_BYTES)
        rows = await wait_for_rows(store_url, 2, timeout_s=60)
        [letter] = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 1, 30.0)
        assert await sink.ready_status() == 200
    assert sorted(r["event_id"] for r in rows) == ["native:0", "native:1"]
    assert (letter.key(), letter.value()) == (b"k-big", NEAR_LIMIT_GARBAGE)


def raise_message_limit(bootstrap: str, topic: str, limit: int) -> None:
    entry = ConfigEntry("max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin = admin_client(bootstrap)  # kept until the futures are done: freeing it fails them
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


async def test_a_dead_letter_producer_failed_for_good_is_replaced(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'fatal.db'}"
    topic, dlq = unique("ingest.fatal"), unique("ingest.dlq")
    registry = await make_registry(kafka_bootstrap, tmp_path, topic, dlq)
    async with running_sink(kafka_bootstrap, registry, store_url, dlq_topic=dlq) as sink:
        await asyncio.to_thread(produce_records, kafka_bootstrap, topic, [(b"k-first", b"not json")])
        [first] = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 1, 30.0)
        # Failed for good between two batches: the next letter is refused before it is sent.
        fail_for_good(sink.service.dead_letters.producer, "ingest-sink-dlq")
        records: list[tuple[bytes | None, bytes]] = [
            native_record(0),
            (b"k-second", b"not json either"),
            native_record(1),
        ]
        await asyncio.to_thread(produce_records, kafka_bootstrap, topic, records)
        rows = await wait_for_rows(store_url, 2, timeout_s=30)
        # The batch's letters went before its rows: all there is is on the topic by now.
        letters = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 3, 5.0)
        text = await sink.metrics()
        assert await sink.ready_status() == 200
    assert first.key() == b"k-first"
    assert sorted(r["event_id"] for r in rows) == ["native:0", "native:1"]
    assert sorted(m.key() or b"" for m in letters) == [b"k-first", b"k-second"]  # each once
    assert metric_value(text, "sink_dlq_producer_restarts_total") == 1
    assert metric_value(text, "sink_store_errors_total") >= 1  # the refused letter, retried
    assert metric_value(text, "sink_records_dead_lettered_total") == 2


async def test_rebalances_mid_stream_lose_and_duplicate_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    total = 12_000
    registry, store_url, stream = await start_stream(kafka_bootstrap, tmp_path, "rb", total, 2000.0)
    group = unique("sink-rebalance")
    first = _sink_process(kafka_bootstrap, registry, store_url, group, free_port_pair())
    second: subprocess.Popen[bytes] | None = None
    try:
        await wait_until_rows(store_url, 1500)
        second = _sink_process(
            kafka_bootstrap, registry, store_url, group, free_port_pair()
        )  # joins: rebalance
        await asyncio.sleep(2.5)
        first.send_signal(signal.SIGTERM)  # leaves: rebalance again
        try:
            await asyncio.to_thread(first.wait, 30)
        except subprocess.TimeoutExpired:
            pytest.fail("the first sink did not stop within 30 s of SIGTERM; logs:\n" + _sink_logs(tmp_path))
        await asyncio.to_thread(stream.join, 60)
        rows = await wait_for_rows(store_url, total, timeout_s=90)
        assert await count_rows(store_url) < total + 1
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=10)
    assert_each_event_once(rows, "rb", total)
    assert first.returncode == 0


def test_a_bad_store_url_stops_the_start_with_the_mistake_named(tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "topics.yaml", [{"id": "example", "entry_topic": "t"}])
    env = {
        **os.environ,
        "TOPICS_FILE": str(registry),
        "STORE_URL": f"sqlite:///{tmp_path / 'x.db'}?synchronous=off",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "consumers.sink"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "ingest-sink: STORE_URL: synchronous='off': expected full or normal"


async def test_malformed_requests_to_the_sink_port_are_counted_not_logged_as_errors(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = await make_registry(kafka_bootstrap, tmp_path, unique("ingest.sinkport"))
    async with running_sink(kafka_bootstrap, registry, f"sqlite:///{tmp_path / 'port.db'}") as sink:
        with caplog.at_level(logging.INFO):
            answers = []
            # A bad header, and first bytes that are not HTTP at all (a TLS ClientHello to the plain
            # port), which aiohttp logs at DEBUG only.
            for request in (b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", TLS_CLIENT_HELLO):
                reader, writer = await asyncio.open_connection(sink.host, sink.port)
                try:
                    writer.write(request)
                    answers.append(await asyncio.wait_for(reader.read(), timeout=5))
                finally:
                    writer.close()
            metrics = await sink.metrics()
    assert [a.split(b"\r\n")[0].split(b" ")[1] for a in answers] == [b"400", b"400"]
    assert metric_value(metrics, "sink_http_malformed_requests_total") == 2
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
