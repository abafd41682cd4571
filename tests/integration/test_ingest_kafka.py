"""POST /v2/data/in/{dataset_id} against real Kafka: records, errors, missing topics, outages."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from gateway.context import CONTEXT
from gateway.settings import GatewaySettings
from ingest_core.prepare import Ingestor, record_size
from ingest_core.publish.kafka_confluent import ConfluentPublisher
from ingest_core.registry import load_registry
from tests.support.gateway import (
    EXAMPLE_SCHEMA,
    REFERENCE_EXAMPLE,
    GatewayHandle,
    envelope,
    event_with_levels,
    running_gateway,
    write_registry,
)
from tests.support.http import TLS_CLIENT_HELLO
from tests.support.kafka import LocalBroker, fail_for_good, free_port_pair, read_topic, unique
from tests.support.sink import metric_value

pytestmark = pytest.mark.integration


@pytest.fixture(params=["confluent", "aiokafka"])
def publisher(request: pytest.FixtureRequest) -> str:
    """The Kafka client behind the gateway (GATEWAY_PUBLISHER): both must behave the same."""
    return str(request.param)


def example_dataset(topic: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "example",
        "entry_topic": topic,
        "partitions": 3,
        "schema": str(EXAMPLE_SCHEMA),
        "key": "eid",
        **extra,
    }


async def test_reference_example_is_on_kafka_in_the_documented_format(
    kafka_bootstrap: str, tmp_path: Path, publisher: str
) -> None:
    topic = unique("ingest.example")
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, publisher=publisher
    ) as gw:
        before = int(time.time() * 1000)
        status, _, body = await gw.post("example", REFERENCE_EXAMPLE)
    assert status == 200
    assert body["params"]["msgid"] == REFERENCE_EXAMPLE["params"]["msgid"]
    assert body["result"] == {"message": "Data ingested successfully"}
    [msg] = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 1)
    value = orjson.loads(msg.value() or b"")
    msgid = REFERENCE_EXAMPLE["params"]["msgid"]
    assert value["dataset"] == "example"
    assert value["msgid"] == msgid
    assert value["event_id"] == msgid
    assert value["event"] == REFERENCE_EXAMPLE["data"]
    assert value["obsrv_meta"]["source"] == {"connector": "api", "connectorInstance": "api"}
    assert before <= value["obsrv_meta"]["syncts"] <= int(time.time() * 1000)
    assert set(value) == {"dataset", "msgid", "event_id", "event", "obsrv_meta"}
    assert msg.key() == b"INTERACT"  # the dataset's key field
    headers = dict(msg.headers() or [])
    assert headers["dataset"] == b"example"
    assert headers["event_id"] == msgid.encode()


async def test_batch_of_100_gives_100_records_with_indexed_event_ids(
    kafka_bootstrap: str, tmp_path: Path, publisher: str
) -> None:
    topic = unique("ingest.batch")
    events = [{"eid": f"E{i}", "n": i} for i in range(100)]
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic, key=None) | {"key": "eid"}], tmp_path, publisher=publisher
    ) as gw:
        status, _, body = await gw.post("example", envelope(events, msgid="batch-1"))
    assert status == 200, body
    msgs = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 100)
    assert len(msgs) == 100
    values = [orjson.loads(m.value() or b"") for m in msgs]
    assert sorted(v["event_id"] for v in values) == sorted(f"batch-1:{i}" for i in range(100))
    for v in values:
        assert v["event"]["n"] == int(v["event_id"].split(":")[1])
    assert {m.key() for m in msgs} == {f"E{i}".encode() for i in range(100)}


async def test_key_defaults_to_msgid(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = unique("ingest.nokey")
    async with running_gateway(kafka_bootstrap, [{"id": "free", "entry_topic": topic}], tmp_path) as gw:
        status, _, _ = await gw.post("free", envelope({"a": 1}, msgid="k-1"))
    assert status == 200
    [msg] = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 1)
    assert msg.key() == b"k-1"


@pytest.mark.parametrize(
    ("dataset", "body", "raw", "status", "code", "message"),
    [
        ("example", None, b"{not json", 400, "DATA_INGESTION_INVALID_INPUT",
         "Request body is not valid JSON: unexpected character, expected a string key: line 1 column 2 (char 1)"),
        ("example", {"ver": "v2"}, None, 400, "DATA_INGESTION_INVALID_INPUT",
         "#required should have required property 'id'"),
        ("nosuch", {"ver": "v2"}, None, 400, "DATA_INGESTION_INVALID_INPUT",
         "#required should have required property 'id'"),  # the envelope is checked before the dataset
        ("single", envelope([{"a": 1}]), None, 400, "DATA_INGESTION_INVALID_INPUT",
         "#properties/data/type should be object (this dataset takes one event per request)"),
        ("example", envelope([{"eid": "a"}, {"eid": 5}]), None, 400, "DATA_INGESTION_INVALID_INPUT",
         "data[1]: #properties/eid/type should be string"),
        ("example", envelope(event_with_levels(254)), None, 400, "DATA_INGESTION_INVALID_INPUT",
         "data: nested too deeply (objects and arrays at most 253 levels deep)"),
        ("example", envelope([{"eid": "a"}, {"eid": "b", "k\x00": 1}]), None, 400,
         "DATA_INGESTION_INVALID_INPUT", "data[1]: a string holds the character U+0000, which cannot be stored"),
        ("nosuch", envelope({"a": 1}), None, 404, "DATASET_NOT_FOUND", "Dataset with id not found"),
        ("notopic", envelope({"a": 1}), None, 404, "TOPIC_NOT_FOUND", "Entry topic is not defined"),
    ],
)  # fmt: skip
async def test_rejections_publish_nothing(
    kafka_bootstrap: str,
    tmp_path: Path,
    dataset: str,
    body: Any,
    raw: bytes | None,
    status: int,
    code: str,
    message: str,
) -> None:
    topic = unique("ingest.reject")
    datasets = [
        example_dataset(topic),
        {"id": "single", "entry_topic": topic, "batch": False},
        {"id": "notopic", "entry_topic": None},
    ]
    async with running_gateway(kafka_bootstrap, datasets, tmp_path) as gw:
        got_status, _, got = await gw.post(dataset, body, raw=raw)
    assert (got_status, got["error"]["code"], got["error"]["message"]) == (status, code, message)
    assert got["params"]["status"] == "FAILED"
    assert got["result"] == {}
    assert await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 1, 3.0) == []


async def test_oversized_body_is_413(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = unique("ingest.big")
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, max_body_bytes=4096
    ) as gw:
        big = envelope([{"eid": "x" * 100} for _ in range(100)])
        status, _, body = await gw.post("example", big)
        ok_status, _, _ = await gw.post("example", envelope({"eid": "small"}))
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert ok_status == 200


async def test_a_chunked_body_over_the_limit_is_413_whether_it_came_with_its_headers_or_after(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A body that came in with its headers is taken from aiohttp's buffer as it lies, without
    # aiohttp's own size check; one of unannounced length must meet the limit all the same.
    topic = unique("ingest.bigchunked")
    body = orjson.dumps(envelope([{"eid": "x" * 100} for _ in range(100)]))
    assert len(body) > 4096
    head = (
        b"POST /v2/data/in/example HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, max_body_bytes=4096
    ) as gw:
        with_headers = await _exchange(gw, head + chunks)
        after = await _exchange(gw, head, chunks)
    for answer in (with_headers, after):
        assert _statuses(answer) == [b"413"], answer
        assert b'"PAYLOAD_TOO_LARGE"' in answer
        assert b"Request body exceeds 4096 bytes" in answer
    assert await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 1, 2.0) == []


async def test_topic_deleted_after_start_is_404_promptly(
    kafka_bootstrap: str, tmp_path: Path, publisher: str
) -> None:
    topic = unique("ingest.deleted")
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, metadata_timeout_ms=2000, publisher=publisher
    ) as gw:
        assert (await gw.post("example", envelope({"eid": "a"})))[0] == 200
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        admin.delete_topics([topic])[topic].result(timeout=30)
        await asyncio.sleep(3)  # let the gateway's metadata snapshot see the deletion
        start = time.monotonic()
        status, _, body = await gw.post("example", envelope({"eid": "b"}))
        elapsed = time.monotonic() - start
    assert (status, body["error"]["code"]) == (404, "TOPIC_NOT_FOUND"), body
    assert elapsed < 10  # bounded by the metadata wait, not a hang; a generous ceiling, not a benchmark


async def test_health_ready_metrics(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = unique("ingest.ops")
    async with running_gateway(kafka_bootstrap, [example_dataset(topic)], tmp_path) as gw:
        await gw.post("example", REFERENCE_EXAMPLE)
        await gw.post("nosuch-dataset-123", envelope({"a": 1}))
        async with gw.session.get("/health") as r:
            assert r.status == 200
        async with gw.session.get("/ready") as r:
            assert r.status == 200
            assert (await r.json())["kafka"] is True
        async with gw.session.get("/metrics") as r:
            text = await r.text()
    assert (
        'gateway_http_requests_total{method="POST",route="/v2/data/in/{dataset_id}",status="200"} 1.0' in text
    )
    assert 'gateway_events_total{dataset="example",outcome="accepted"} 1.0' in text
    assert "nosuch-dataset-123" not in text  # label values stay bounded
    assert "gateway_http_request_duration_seconds_bucket" in text


async def test_unknown_paths_and_methods_are_answered_in_the_envelope(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("ingest.routes")
    async with running_gateway(kafka_bootstrap, [example_dataset(topic)], tmp_path) as gw:
        async with gw.session.get("/no/such/path") as r:
            not_found = (r.status, await r.json())
        async with gw.session.get("/v2/data/in/example") as r:
            not_allowed = (r.status, r.headers.get("Allow"), await r.json())
        async with gw.session.post("/health") as r:
            health_post = (r.status, r.headers.get("Allow"))
        async with gw.session.head("/health") as r:
            health_head = r.status
        async with gw.session.get("/metrics") as r:
            text = await r.text()
    assert not_found[0] == 404
    assert not_found[1]["error"]["code"] == "NOT_FOUND"
    assert not_found[1]["params"]["status"] == "FAILED"
    assert not_allowed[:2] == (405, "POST")
    assert not_allowed[2]["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert health_post == (405, "GET, HEAD")
    assert health_head == 200
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/path" not in text  # label values stay bounded
    assert 'method="GET",route="/v2/data/in/{dataset_id}",status="405"' in text


async def test_kafka_down_gives_fast_503_then_recovers(tmp_path: Path, publisher: str) -> None:
    # Its own broker: this test stops and restarts it.
    broker = LocalBroker(tmp_path / "kafka", free_port_pair())
    await asyncio.to_thread(broker.start)
    try:
        topic = unique("ingest.outage")
        async with running_gateway(
            broker.bootstrap,
            [example_dataset(topic)],
            tmp_path,
            delivery_timeout_ms=3000,
            publisher=publisher,
        ) as gw:
            assert (await gw.post("example", envelope({"eid": "before"}, msgid="m-before")))[0] == 200
            await asyncio.to_thread(broker.stop)
            start = time.monotonic()
            status, headers, body = await gw.post("example", envelope({"eid": "during"}, msgid="m-during"))
            elapsed = time.monotonic() - start
            assert (status, body["error"]["code"]) == (503, "KAFKA_UNAVAILABLE"), body
            assert int(headers["Retry-After"]) >= 1
            assert elapsed < 3.0 + 2.0  # within the delivery timeout (plus its guard), never a hang
            async with gw.session.get("/ready") as r:
                ready_status = r.status
            await asyncio.to_thread(broker.start)
            deadline = time.monotonic() + 60
            status = 0
            while time.monotonic() < deadline:
                status, _, body = await gw.post("example", envelope({"eid": "after"}, msgid="m-after"))
                if status == 200:
                    break
                assert status == 503, body
                await asyncio.sleep(0.5)
            assert status == 200
        assert ready_status == 503
        msgs = await asyncio.to_thread(read_topic, broker.bootstrap, topic, 2)
        ids = {orjson.loads(m.value() or b"")["msgid"] for m in msgs}
        assert {"m-before", "m-after"} <= ids
    finally:
        await asyncio.to_thread(broker.stop)


async def test_an_event_too_large_for_kafka_refuses_its_whole_request(
    kafka_bootstrap: str, tmp_path: Path, publisher: str
) -> None:
    # Before: the client refused the large record only when it came to it, and the 413 request's
    # events before it were on Kafka.
    topic = unique("ingest.large")
    limit = GatewaySettings().kafka_max_record_bytes
    unlimited = Ingestor(
        load_registry(write_registry(tmp_path / "r.yaml", [example_dataset(topic)])), 5, 10**9
    )
    smallest = record_size(
        unlimited.prepare(
            "example", envelope([{"eid": "a"}, {"eid": "E", "pad": ""}], msgid="m-fits")
        ).records[1]
    )
    largest = {"eid": "E", "pad": "x" * (limit - smallest)}  # a record of exactly the limit
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, publisher=publisher
    ) as gw:
        too_large = [{"eid": "a"}, {**largest, "pad": largest["pad"] + "x"}, {"eid": "c"}]
        status, _, body = await gw.post("example", envelope(too_large, msgid="m-over"))  # as long as m-fits
        assert (status, body["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE"), body
        assert body["error"]["message"] == (
            f"data[1]: too large for Kafka: its record would take {limit + 1:,} bytes, at most {limit:,} are taken"
        )
        # The largest record allowed is taken by this Kafka client, and by the broker's default limit.
        status, _, body = await gw.post("example", envelope([{"eid": "a"}, largest], msgid="m-fits"))
        assert status == 200, body
    records = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 3, 5.0)  # 2, and no more
    assert sorted(orjson.loads(m.value() or b"")["event_id"] for m in records) == ["m-fits:0", "m-fits:1"]


async def test_a_producer_failed_for_good_is_replaced_without_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Before: every request was answered 503 from then on, while /ready still said ready.
    topic = unique("ingest.fatal")
    async with running_gateway(kafka_bootstrap, [example_dataset(topic)], tmp_path) as gw:
        assert gw.app is not None
        assert (await gw.post("example", envelope({"eid": "E"}, msgid="before")))[0] == 200
        publisher = gw.app[CONTEXT].publisher()
        assert isinstance(publisher, ConfluentPublisher)
        fail_for_good(publisher._producer, "ingest-gateway")
        answers: list[tuple[int, str | None, str | None]] = []
        deadline = time.monotonic() + 10
        while not answers or answers[-1][0] != 200:
            assert time.monotonic() < deadline, f"still failing: {answers[-3:]}"
            status, headers, body = await gw.post(
                "example", envelope({"eid": "E"}, msgid=f"after-{len(answers)}")
            )
            answers.append(
                (status, body["error"]["code"] if status != 200 else None, headers.get("Retry-After"))
            )
            await asyncio.sleep(0.02)
        async with gw.session.get("/ready") as r:
            assert r.status == 200
        async with gw.session.get("/metrics") as r:
            text = await r.text()
    # Meanwhile, if at all: 503 KAFKA_UNAVAILABLE with Retry-After, never a 500 or a 200 not on Kafka.
    assert {answer for answer in answers[:-1]} <= {(503, "KAFKA_UNAVAILABLE", "2")}
    assert metric_value(text, "gateway_kafka_producer_restarts_total") == 1
    records = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 2)
    msgids = sorted(json.loads(m.value() or b"")["msgid"] for m in records)
    assert msgids == [f"after-{len(answers) - 1}", "before"]


async def test_overload_is_shed_fast_with_503_and_every_200_is_on_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("ingest.overload")
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, max_inflight_requests=2
    ) as gw:
        batch = [{"eid": f"E{i}"} for i in range(200)]
        results = await asyncio.gather(
            *(gw.post("example", envelope(batch, msgid=f"o-{n}")) for n in range(30))
        )
    shed = [(h, b) for status, h, b in results if status == 503]
    ok = [b for status, _h, b in results if status == 200]
    assert shed, "nothing was shed"
    assert ok, "nothing got through"
    assert len(shed) + len(ok) == 30
    for headers, body in shed:
        assert body["error"]["code"] == "OVERLOADED"
        assert headers["Retry-After"] == "1"
    msgs = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 200 * len(ok) + 1, 10.0)
    assert {orjson.loads(m.value() or b"")["msgid"] for m in msgs} == {b["params"]["msgid"] for b in ok}


async def _gauge(gw: GatewayHandle, name: str) -> float:
    async with gw.session.get("/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


async def _until_gauge(gw: GatewayHandle, name: str, value: float) -> None:
    deadline = time.monotonic() + 5
    while (current := await _gauge(gw, name)) != value:
        assert time.monotonic() < deadline, f"{name} stayed at {current}, not {value}"
        await asyncio.sleep(0.02)


def _overloaded(result: tuple[int, dict[str, Any], Any]) -> bool:
    status, headers, body = result
    return (status, body["error"]["code"], headers["Retry-After"]) == (503, "OVERLOADED", "1")


async def test_events_in_flight_are_bounded_over_all_requests(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = unique("ingest.events")
    # A long linger holds the first request in its wait for Kafka while the others arrive.
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path,
        max_inflight_events=1000, max_batch_events=1000, kafka_batch_linger_ms=1500.0,
    ) as gw:  # fmt: skip
        batch = [{"eid": f"E{i}"} for i in range(600)]
        first = asyncio.create_task(gw.post("example", envelope(batch, msgid="ev-1")))
        await _until_gauge(gw, "gateway_inflight_events", 600)
        started = time.monotonic()
        assert _overloaded(await gw.post("example", envelope(batch, msgid="ev-2")))  # 1,200 > 1,000
        assert time.monotonic() - started < 1  # at once, not after the first one's wait
        fits = await gw.post("example", envelope(batch[:400], msgid="ev-3"))  # exactly 1,000
        assert (await first)[0] == 200
        assert fits[0] == 200
        assert await _gauge(gw, "gateway_inflight_events") == 0
        assert (await gw.post("example", envelope(batch, msgid="ev-4")))[0] == 200  # released
    msgs = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 1601, 4.0)
    by_msgid = Counter(orjson.loads(m.value() or b"")["msgid"] for m in msgs)
    assert by_msgid == {"ev-1": 600, "ev-3": 400, "ev-4": 600}


async def _post_in_two_halves(gw: GatewayHandle, body: bytes, pause_s: float | None) -> tuple[int, Any]:
    """POST ``body`` over a raw connection: headers and half the body, then after ``pause_s`` the
    rest (never, if None). Returns the status and the parsed answer."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    try:
        writer.write(
            b"POST /v2/data/in/example HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        await writer.drain()
        if pause_s is None:
            await _until_gauge(gw, "gateway_inflight_bytes", len(body))  # admitted, then stalls
        else:
            await asyncio.sleep(pause_s)
            writer.write(body[len(body) // 2 :])
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        lines = head.split(b"\r\n")
        length = next(int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length:"))
        return int(lines[0].split()[1]), orjson.loads(await reader.readexactly(length))
    finally:
        writer.close()


async def test_a_body_that_stalls_is_answered_408_and_gives_its_share_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("ingest.stall")
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, body_timeout_ms=500
    ) as gw:
        status, answer = await _post_in_two_halves(gw, orjson.dumps(envelope({"eid": "T1"}, "t-1")), None)
        assert (status, answer["error"]["code"], answer["responseCode"]) == (
            408, "REQUEST_TIMEOUT", "REQUEST_TIMEOUT",
        )  # fmt: skip
        assert await _gauge(gw, "gateway_inflight_bytes") == 0
        assert await _gauge(gw, "gateway_inflight_requests") == 0
        # A body that arrives within the timeout, whole or in pieces, is taken.
        assert (await _post_in_two_halves(gw, orjson.dumps(envelope({"eid": "T2"}, "t-2")), 0.1))[0] == 200
        assert (await gw.post("example", envelope({"eid": "T3"}, "t-3")))[0] == 200
    msgs = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 3, 4.0)
    assert sorted(orjson.loads(m.value() or b"")["msgid"] for m in msgs) == ["t-2", "t-3"]


async def test_body_bytes_in_flight_are_bounded_whether_announced_or_chunked(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("ingest.bytes")
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path,
        max_body_bytes=64 * 1024, max_inflight_bytes=100 * 1024, kafka_batch_linger_ms=1500.0,
    ) as gw:  # fmt: skip
        big = orjson.dumps(envelope([{"eid": f"E{i:04d}", "pad": "x" * 100} for i in range(450)], "b-1"))
        assert 50 * 1024 < len(big) < 64 * 1024
        first = asyncio.create_task(gw.post("example", None, raw=big))
        await _until_gauge(gw, "gateway_inflight_bytes", len(big))
        # A second large body would take the total past 100 KiB: refused before it is read.
        assert _overloaded(await gw.post("example", None, raw=big.replace(b"b-1", b"b-2")))

        async def chunked(msgid: str) -> tuple[int, dict[str, Any], Any]:
            async def body() -> AsyncIterator[bytes]:  # sent chunked: no Content-Length
                yield orjson.dumps(envelope({"eid": "C1"}, msgid))

            async with gw.session.post("/v2/data/in/example", data=body()) as resp:
                return resp.status, dict(resp.headers), await resp.json(content_type=None)

        # A body of unannounced length holds MAX_BODY_BYTES until read: no room for it now...
        assert _overloaded(await chunked("c-1"))
        # ...nor for a compressed one, whatever its length on the wire: it may become MAX_BODY_BYTES.
        zipped = gzip.compress(orjson.dumps(envelope({"eid": "Z1"}, "z-1")))
        assert _overloaded(await _post_encoded(gw, zipped, "gzip"))
        # ...while a small announced one fits beside the first.
        assert (await gw.post("example", envelope({"eid": "S1"}, "s-1")))[0] == 200
        assert (await first)[0] == 200
        assert (await chunked("c-2"))[0] == 200  # and once read, only its own size
        zipped = gzip.compress(orjson.dumps(envelope({"eid": "Z2"}, "z-2")))
        assert (await _post_encoded(gw, zipped, "gzip"))[0] == 200
        assert await _gauge(gw, "gateway_inflight_bytes") == 0
    msgs = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 454, 4.0)
    by_msgid = Counter(orjson.loads(m.value() or b"")["msgid"] for m in msgs)
    assert by_msgid == {"b-1": 450, "s-1": 1, "c-2": 1, "z-2": 1}


async def _post_encoded(gw: GatewayHandle, body: bytes, coding: str) -> tuple[int, dict[str, Any], Any]:
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    async with gw.session.post("/v2/data/in/example", data=body, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def test_compressed_bodies_are_decoded_and_bad_encodings_answered_in_the_envelope(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("ingest.encoded")
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic, batch=True)], tmp_path, max_body_bytes=64 * 1024
    ) as gw:
        batch = orjson.dumps(envelope([{"eid": f"G{i}"} for i in range(100)], "gz-1"))
        gzipped = await _post_encoded(gw, gzip.compress(batch), "gzip")
        deflated = await _post_encoded(
            gw, zlib.compress(orjson.dumps(envelope({"eid": "D1"}, "df-1"))), "deflate"
        )
        brotli = await _post_encoded(gw, batch, "br")
        corrupt = await _post_encoded(gw, gzip.compress(batch)[:-8], "gzip")
        bomb = await _post_encoded(gw, gzip.compress(b" " * (1024 * 1024)), "gzip")  # ~1 KB -> 1 MiB
        assert await _gauge(gw, "gateway_inflight_bytes") == 0
    assert (gzipped[0], deflated[0]) == (200, 200)
    status, headers, answer = brotli
    assert (status, answer["error"]["code"], answer["responseCode"]) == (
        415, "UNSUPPORTED_CONTENT_ENCODING", "UNSUPPORTED_MEDIA_TYPE",
    )  # fmt: skip
    assert headers["Accept-Encoding"] == "gzip, deflate"
    assert "'br' is not supported" in answer["error"]["message"]
    status, _, answer = corrupt
    assert (status, answer["error"]["code"]) == (400, "DATA_INGESTION_INVALID_INPUT")
    assert answer["error"]["message"] == "Request body is not valid gzip: the stream ends early"
    status, _, answer = bomb
    assert (status, answer["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert answer["error"]["message"] == "Request body exceeds 65536 bytes once decompressed"
    msgs = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 102, 4.0)
    events = sorted(orjson.loads(m.value() or b"")["event"]["eid"] for m in msgs)
    assert events == sorted([f"G{i}" for i in range(100)] + ["D1"])


async def _exchange(gw: GatewayHandle, *parts: bytes, whole: bool = True) -> bytes:
    """Send ``parts`` over a raw connection, 0.2 s apart; return what came back before it closed
    (``whole``), or the first answer's head."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    try:
        for i, part in enumerate(parts):
            if i:
                await asyncio.sleep(0.2)
            writer.write(part)
            await writer.drain()
        return await asyncio.wait_for(reader.read() if whole else reader.readuntil(b"\r\n\r\n"), timeout=5)
    finally:
        writer.close()


def _statuses(answers: bytes) -> list[bytes]:
    return [line.split(b" ")[1] for line in answers.split(b"\r\n") if line.startswith(b"HTTP/1.")]


async def test_malformed_http_is_counted_not_logged_as_an_error(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topic = unique("ingest.malformed")
    head = b"POST /v2/data/in/example HTTP/1.1\r\nHost: x\r\n"
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, body_timeout_ms=500
    ) as gw:
        with caplog.at_level(logging.INFO):
            answers = [
                await _exchange(gw, head + b"Bad Header\r\n\r\n"),
                await _exchange(gw, head + b"X: " + b"a" * 9000 + b"\r\n\r\n"),
                await _exchange(gw, head + b"Content-Length: abc\r\n\r\n"),
                await _exchange(gw, head + b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"),
                # First bytes that are not HTTP at all, which aiohttp logs at DEBUG only: a TLS
                # ClientHello sent to the plain port, and an SSH client's greeting.
                await _exchange(gw, TLS_CLIENT_HELLO),
                await _exchange(gw, b"SSH-2.0-OpenSSH_9.6\r\n"),
            ]
            # A bad chunk once the route is reading the body: aiohttp gives the body no end, so the
            # route answers 408 after BODY_TIMEOUT_MS.
            broken = await _exchange(gw, chunked, b"ZZ\r\n", whole=False)
            # A client that goes away mid-body: the route's read fails, answered 400 to no one.
            _, writer = await asyncio.open_connection(gw.host, gw.port)
            writer.write(chunked)
            await writer.drain()
            await _until_gauge(gw, "gateway_inflight_requests", 1)
            writer.close()
            await _until_gauge(gw, "gateway_inflight_requests", 0)
            async with gw.session.get("/metrics") as resp:
                metrics = await resp.text()
    assert [_statuses(a) for a in answers] == [[b"400"]] * 6
    assert _statuses(broken) == [b"408"]
    # The six, and the broken chunk's own 400 once aiohttp stops waiting for the rest of its body
    # (``lingering_time``, 10 s): it may or may not have come yet.
    assert metric_value(metrics, "gateway_malformed_requests_total ") in (6, 7)
    route = 'route="/v2/data/in/{dataset_id}"'
    assert f'gateway_http_requests_total{{method="POST",{route},status="400"}} 1.0' in metrics
    assert f'gateway_http_requests_total{{method="POST",{route},status="408"}} 1.0' in metrics
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_100_continue_is_sent_only_for_a_body_the_gateway_will_read(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # aiohttp's default sent "100 Continue" before the route ran, so a client was told to send a
    # body the route then refused unread.
    topic = unique("ingest.expect")
    body = orjson.dumps(envelope({"eid": "X1"}, msgid="expect-1"))

    def head(length: int, expect: bytes = b"100-continue", extra: bytes = b"") -> bytes:
        return (
            b"POST /v2/data/in/example HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: %s\r\nContent-Length: %d\r\n%s\r\n" % (expect, length, extra)
        )

    async with running_gateway(
        kafka_bootstrap, [example_dataset(topic)], tmp_path, max_body_bytes=8192, max_inflight_bytes=6000
    ) as gw:
        refused = [
            await _exchange(gw, head(9000), whole=False),  # over MAX_BODY_BYTES
            await _exchange(gw, head(7000), whole=False),  # over MAX_INFLIGHT_BYTES
            await _exchange(gw, head(len(body), extra=b"Content-Encoding: br\r\n"), whole=False),
        ]
        reader, writer = await asyncio.open_connection(gw.host, gw.port)
        try:
            writer.write(head(len(body)))
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            writer.write(body)
            final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        finally:
            writer.close()
        # Another expectation is ignored (RFC 9110 allows it), not a plain-text 417.
        other = await _exchange(gw, head(len(body), expect=b"something") + body, whole=False)
    assert [_statuses(a) for a in refused] == [[b"413"], [b"503"], [b"415"]]
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert _statuses(final) == [b"200"]
    assert _statuses(other) == [b"200"]
    msgs = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 2, 4.0)
    assert sorted(orjson.loads(m.value() or b"")["msgid"] for m in msgs) == ["expect-1", "expect-1"]
