"""Hostile input on real Kafka: each is answered 4xx with a clear message, nothing of it is
published, and the gateway stays healthy (it answers a good request afterwards)."""

from __future__ import annotations

import asyncio
import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.gateway import EXAMPLE_SCHEMA, GatewayHandle, envelope, running_gateway
from tests.support.kafka import read_topic, unique

pytestmark = pytest.mark.integration

HEAD = b'{"id":"api.data.in","ver":"v2","ts":"1","params":{"msgid":"m"},"data":'
MIB = 1024 * 1024


def body(event: bytes) -> bytes:
    return HEAD + event + b"}"


CASES: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    # name: (body, headers, status, words the message must hold)
    "invalid UTF-8": (body(b'{"eid":"\xff\xfe"}'), {}, 400, "UTF-8"),
    "nested 10,000 deep": (body(b'{"eid":"E","x":' + b"[" * 10_000 + b"]" * 10_000 + b"}"), {}, 400, "depth limit"),
    "a number of 10,000 digits": (body(b'{"eid":"E","x":' + b"9" * 10_000 + b"}"), {}, 400, "out of range"),
    "a number of 65 digits": (body(b'{"eid":"E","x":-' + b"1" * 65 + b"}"), {}, 400, "out of range"),
    "a 10 MiB string": (body(b'{"eid":"E","x":"' + b"a" * (10 * MIB) + b'"}'), {}, 413, "exceeds"),
    "a gzip bomb": (gzip.compress(body(b'{"eid":"E","x":"' + b"a" * (64 * MIB) + b'"}')), {"Content-Encoding": "gzip"}, 413, "exceeds"),
    "not JSON": (b"\x00\x01binary", {}, 400, "not valid JSON"),
    "JSON of the wrong shape": (b'[1,2,3]', {}, 400, "should be object"),
    "a NUL character": (body(b'{"eid":"E\\u0000"}'), {}, 400, "U+0000"),
}  # fmt: skip


async def post(gw: GatewayHandle, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with gw.session.post("/v2/data/in/example", data=io.BytesIO(data), headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def test_hostile_bodies_are_refused_clearly_and_publish_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("hostile")
    dataset = {"id": "example", "entry_topic": topic, "schema": str(EXAMPLE_SCHEMA), "key": "eid"}
    async with running_gateway(kafka_bootstrap, [dataset], tmp_path) as gw:
        answers = {name: await post(gw, data, headers) for name, (data, headers, _, _) in CASES.items()}
        good = await gw.post("example", envelope({"eid": "after"}, msgid="good"))
    for name, (status, answer) in answers.items():
        _, _, expected, words = CASES[name]
        assert status == expected, (name, answer)
        assert words in answer["error"]["message"], (name, answer["error"])
    assert good[0] == 200
    records = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 2, 5)
    assert [r.key() for r in records] == [b"after"]  # only the good one


async def test_a_repeated_schema_field_the_last_wins_and_only_it_is_published(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique("dupes")
    dataset = {"id": "example", "entry_topic": topic, "schema": str(EXAMPLE_SCHEMA), "key": "eid"}
    async with running_gateway(kafka_bootstrap, [dataset], tmp_path) as gw:
        first_bad = await post(gw, HEAD.replace(b'"m"', b'"m1"') + b'{"eid":"E1","eid":5}}', {})
        last_good = await post(gw, HEAD.replace(b'"m"', b'"m2"') + b'{"eid":5,"eid":"E2"}}', {})
    # The schema sees the value that wins: the last, as JavaScript's and most parsers' do.
    assert first_bad[0] == 400
    assert last_good[0] == 200
    records = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 2, 5)
    assert [r.value().count(b'"eid"') for r in records] == [1]  # type: ignore[union-attr]
    assert b'"event":{"eid":"E2"}' in (records[0].value() or b"")


async def test_headers_cannot_inject_into_answers_and_are_bounded(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    dataset = {"id": "example", "entry_topic": unique("headers"), "schema": str(EXAMPLE_SCHEMA)}
    async with running_gateway(kafka_bootstrap, [dataset], tmp_path) as gw:
        # A request id with what would split the answer's headers is not echoed: one is made.
        reader, writer = await asyncio.open_connection(gw.host, gw.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc\rSet-Cookie: evil=1\r\n\r\n")
        await writer.drain()
        injected = await asyncio.wait_for(reader.read(4096), 10)
        writer.close()
        many = {f"X-H-{i}": "v" for i in range(1000)}
        async with gw.session.get("/health", headers=many) as r:
            many_status = r.status
        async with gw.session.get("/health", headers={"X-Request-ID": "x" * 129}) as r:
            long_id = r.headers["X-Request-ID"]
        async with gw.session.get("/health") as r:
            still = r.status
    head = injected.split(b"\r\n\r\n", 1)[0]
    assert b" 400 " in head.split(b"\r\n", 1)[0]  # a bare CR in a header: refused by the parser
    assert b"Set-Cookie" not in head
    assert many_status in (400, 431)  # aiohttp's bound on the header count
    assert long_id != "x" * 129
    assert still == 200


async def test_bodies_that_are_certainly_not_json_are_415_on_every_json_route(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    dataset = {"id": "example", "entry_topic": unique("media"), "schema": str(EXAMPLE_SCHEMA)}
    good = envelope({"eid": "E"})
    async with running_gateway(kafka_bootstrap, [dataset], tmp_path) as gw:
        statuses = {}
        for media in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/xml",
                      "application/soap+xml", "TEXT/HTML; charset=utf-8"):  # fmt: skip
            async with gw.session.post(
                "/v2/data/in/example", json=good, headers={"Content-Type": media}
            ) as r:
                statuses[media] = r.status, (await r.json())["error"]["message"]
        accepted = {}
        for kind in ("application/json; charset=utf-8", "text/plain", "application/octet-stream"):
            async with gw.session.post(
                "/v2/data/in/example", data=orjson.dumps(good), headers={"Content-Type": kind}
            ) as r:
                accepted[kind] = r.status
    assert all(status == 415 for status, _ in statuses.values()), statuses
    assert "is not JSON: send the body as application/json" in statuses["text/xml"][1]
    assert set(accepted.values()) == {200}, accepted
