"""The client against a scripted gateway (an aiohttp app in this process) and a fake clock: its
batching, the msgid it keeps across retries, its waits (Retry-After, backoff), what it does not
retry, the event at fault, the split, and its bounded buffer. The real gateway: tests/integration/
test_client.py."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from ingest_client import AsyncIngestClient, BufferFull, IngestClient, SendError

Script = Callable[[dict[str, Any]], tuple[int, dict[str, Any], dict[str, str]]]


def ok(_doc: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 200, {"responseCode": "OK"}, {}


def refuse(
    status: int, code: str, message: str, **headers: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"error": {"code": code, "message": message}}, headers


class Gateway:
    """Records each request's body (decoded) and answers by ``script``."""

    def __init__(self, script: Script = ok) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        doc = orjson.loads(raw)
        doc["_dataset"] = request.match_info["dataset"]
        doc["_key"] = request.headers.get("X-API-KEY")
        self.requests.append(doc)
        status, body, headers = self.script(doc)
        return web.Response(
            status=status, body=orjson.dumps(body), headers=headers, content_type="application/json"
        )


@asynccontextmanager
async def serving(gateway: Gateway | Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """The URL of a gateway answering with ``gateway`` (a Gateway's script, or a handler)."""
    app = web.Application()
    app.router.add_post("/v2/data/in/{dataset}", gateway.handle if isinstance(gateway, Gateway) else gateway)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def events_of(doc: dict[str, Any]) -> list[Any]:
    return doc["data"] if isinstance(doc["data"], list) else [doc["data"]]


async def test_events_are_batched_per_dataset_by_count_and_by_linger() -> None:
    gateway = Gateway()
    async with serving(gateway) as url:
        async with AsyncIngestClient(url, "k", max_batch_events=3, linger_ms=20) as client:
            futures = [await client.send("a", {"n": i}) for i in range(7)]
            futures.append(await client.send("b", {"n": 99}))
            await asyncio.sleep(0.1)  # the linger sends what is left
            assert all(f.done() for f in futures)
        counters = client.counters
    by_dataset = [(d["_dataset"], [e["n"] for e in events_of(d)]) for d in gateway.requests]
    assert sorted(by_dataset) == [("a", [0, 1, 2]), ("a", [3, 4, 5]), ("a", [6]), ("b", [99])]
    assert {d["_key"] for d in gateway.requests} == {"k"}
    assert len({d["params"]["msgid"] for d in gateway.requests}) == 4
    assert (counters.sent, counters.failed, counters.retried) == (8, 0, 0)


async def test_a_retried_batch_keeps_its_msgid_and_waits_as_told() -> None:
    answers = iter([
        refuse(503, "KAFKA_UNAVAILABLE", "retry", **{"Retry-After": "2"}),
        refuse(429, "RATE_LIMITED", "slow down", **{"Retry-After": "7"}),
        refuse(503, "OVERLOADED", "busy"),  # no Retry-After: the backoff alone
        (200, {}, {}),
    ])  # fmt: skip
    gateway = Gateway(lambda _doc: next(answers))
    clock = FakeClock()
    async with serving(gateway) as url:
        async with AsyncIngestClient(url, sleep=clock.sleep, clock=clock, draw=lambda: 1.0) as client:
            await client.send_batch("a", [{"n": 1}, {"n": 2}])
    assert len({d["params"]["msgid"] for d in gateway.requests}) == 1  # the same msgid, 4 times
    assert len(gateway.requests) == 4
    # Retry-After is a floor under the backoff (0.1 s, 0.2 s, 0.4 s with a draw of 1.0).
    assert clock.waits == [2.0, 7.0, 0.4]
    assert (client.counters.sent, client.counters.retried) == (2, 3)


async def test_retries_stop_after_max_retry_s_and_the_batch_fails_retriable() -> None:
    gateway = Gateway(lambda _doc: refuse(503, "KAFKA_UNAVAILABLE", "down", **{"Retry-After": "2"}))
    clock = FakeClock()
    async with serving(gateway) as url:
        async with AsyncIngestClient(url, max_retry_s=9, sleep=clock.sleep, clock=clock) as client:
            future = await client.send("a", {"n": 1})
            await client.flush()
    with pytest.raises(SendError) as failed:
        future.result()
    assert failed.value.retriable
    assert failed.value.status == 503
    assert clock.now <= 9
    assert len(gateway.requests) == 5  # at 0, 2, 4, 6, 8 s: a wait past 9 s is not begun
    assert (client.counters.failed, client.counters.retried) == (1, 4)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
async def test_other_answers_fail_the_batch_at_once_with_the_gateways_words(status: int) -> None:
    gateway = Gateway(
        lambda _doc: refuse(status, "SOME_CODE", "data[1]: #properties/eid/type should be string")
    )
    async with serving(gateway) as url:
        async with AsyncIngestClient(url) as client:
            with pytest.raises(SendError) as failed:
                await client.send_batch("a", [{"eid": "x"}, {"eid": 5}])
    assert len(gateway.requests) == 1
    assert (failed.value.status, failed.value.code, failed.value.index) == (status, "SOME_CODE", 1)
    assert not failed.value.retriable
    assert client.counters.failed == 2


async def test_split_fails_the_event_at_fault_and_sends_the_rest() -> None:
    def script(doc: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        for i, event in enumerate(events_of(doc)):
            if not isinstance(event["eid"], str):
                return refuse(
                    400, "DATA_INGESTION_INVALID_INPUT", f"data[{i}]: #properties/eid/type should be string"
                )
        return 200, {}, {}

    gateway = Gateway(script)
    async with serving(gateway) as url:
        async with AsyncIngestClient(url, on_invalid="split", max_batch_events=5) as client:
            futures = [await client.send("a", {"eid": e}) for e in ["a", 1, "b", 2, "c"]]
    outcomes = [f.exception() is None for f in futures]
    assert outcomes == [True, False, True, False, True]
    assert [e["eid"] for e in events_of(gateway.requests[-1])] == ["a", "b", "c"]
    assert (client.counters.sent, client.counters.failed) == (3, 2)


async def test_a_full_buffer_waits_or_refuses() -> None:
    release = asyncio.Event()

    async def slow_handle(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    async with serving(slow_handle) as url:
        async with AsyncIngestClient(url, max_batch_events=2, max_buffer_events=4, linger_ms=1) as client:
            for i in range(4):
                await client.send("a", {"n": i})
            with pytest.raises(BufferFull):
                await client.send("a", {"n": 4}, block=False)
            waiting = asyncio.create_task(client.send("a", {"n": 5}))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # held until the batches in flight are answered
            release.set()
            await asyncio.wait_for(waiting, 5)
    assert client.counters.sent == 5


async def test_large_bodies_are_gzipped_small_ones_not() -> None:
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Content-Encoding"))
        return web.json_response({})

    async with serving(handle) as url, AsyncIngestClient(url) as client:
        await client.send_batch("a", [{"n": 1}])
        await client.send_batch("a", [{"text": "x" * 2000}])
    assert seen == [None, "gzip"]


def test_the_blocking_client_sends_from_a_thread_of_its_own() -> None:
    gateway = Gateway()

    async def run() -> None:
        async with serving(gateway) as url:

            def blocking() -> int:
                with IngestClient(url, max_batch_events=10, linger_ms=5) as client:
                    futures = [client.send("a", {"n": i}) for i in range(25)]
                    client.flush()
                    assert all(f.result(timeout=5) is None for f in futures)
                    return client.counters.sent

            assert await asyncio.to_thread(blocking) == 25

    asyncio.run(run())
    assert sum(len(events_of(d)) for d in gateway.requests) == 25


async def test_memory_stays_bounded_by_the_buffer_while_the_gateway_is_slow() -> None:
    import tracemalloc

    async def slow_handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(0.01)
        return web.json_response({})

    peaks = {}
    async with serving(slow_handle) as url:
        for pending in (200, 20_000):
            tracemalloc.start()
            async with AsyncIngestClient(url, max_batch_events=100, max_buffer_events=pending) as client:
                for n in range(20_000):
                    await client.send("a", {"eid": "e", "n": n, "text": "x" * 100})
                peaks[pending] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert client.counters.sent == 20_000
    # 20,000 events of ~140 bytes: held all at once they take MiBs; 200 at a time, a small part.
    assert peaks[200] < peaks[20_000] / 4, peaks
