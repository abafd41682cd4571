"""Access and rate limits on real Kafka: who may publish to which dataset (public datasets, keys
with ``ingest`` and scopes), 429 with ``Retry-After`` in each API family's format, nothing published
by a refused request, client addresses behind trusted proxies, and ``/metrics`` on its own port."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ingest_core.auth import parse_principals
from tests.support.gateway import EXAMPLE_SCHEMA, GatewayHandle, envelope, running_gateway
from tests.support.kafka import read_topic, unique

pytestmark = pytest.mark.integration


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def principals(**limits: Any) -> Any:
    return parse_principals(
        {
            "principals": [
                {"id": "writer", "key_sha256": _sha("k-writer"), "permissions": ["ingest"]},
                {"id": "scoped", "key_sha256": _sha("k-scoped"), "permissions": ["ingest"], "scopes": ["open"]},
                {"id": "importer", "key_sha256": _sha("k-importer"), "permissions": ["source-import", "run-import"]},
                {
                    "id": "slow", "key_sha256": _sha("k-slow"), "permissions": ["ingest", "source-import", "run-import"],
                    "limits": {"requests_per_s": 0.5, "requests_burst": 2, "events_per_s": 1, "events_burst": 5},
                },
            ],
            **({"limits": limits} if limits else {}),
        },
        Path("auth.yaml"),
    )  # fmt: skip


def event(i: int) -> dict[str, Any]:
    return {"eid": f"E{i}", "n": i}


async def post(gw: GatewayHandle, dataset: str, body: Any, **headers: str) -> tuple[int, dict[str, str], Any]:
    async with gw.session.post(f"/v2/data/in/{dataset}", json=body, headers=headers) as r:
        return r.status, dict(r.headers), await r.json(content_type=None)


def datasets(open_topic: str, private_topic: str) -> list[dict[str, Any]]:
    return [
        {"id": "open", "entry_topic": open_topic, "public": True, "schema": str(EXAMPLE_SCHEMA)},
        {"id": "private", "entry_topic": private_topic, "public": False, "schema": str(EXAMPLE_SCHEMA)},
    ]


def msgids(bootstrap: str, topic: str, expected: int) -> list[str]:
    # One more than expected is asked for: a record published that should not have been is seen.
    records = read_topic(bootstrap, topic, expected + 1, timeout_s=5)
    found = [dict(r.headers() or []).get("msgid") for r in records]
    return [m.decode() if isinstance(m, bytes) else str(m) for m in found]


async def test_who_may_publish_to_which_dataset(kafka_bootstrap: str, tmp_path: Path) -> None:
    open_topic, private_topic = unique("open"), unique("private")
    async with running_gateway(
        kafka_bootstrap, datasets(open_topic, private_topic), tmp_path, principals=principals()
    ) as gw:
        answers = {
            "anonymous, public": await post(gw, "open", envelope(event(1), "m-open-anon")),
            "anonymous, private": await post(gw, "private", envelope(event(2), "m-anon")),
            "unknown key": await post(gw, "private", envelope(event(3), "m-unknown"), **{"X-API-KEY": "nope"}),
            "unknown key, public": await post(gw, "open", envelope(event(4), "m-unknown-open"), **{"X-API-KEY": "nope"}),
            "no ingest": await post(gw, "private", envelope(event(5), "m-noperm"), **{"X-API-KEY": "k-importer"}),
            "out of scope": await post(gw, "private", envelope(event(6), "m-scope"), **{"X-API-KEY": "k-scoped"}),
            "in scope, bearer": await post(gw, "open", envelope(event(7), "m-open-key"), Authorization="Bearer k-scoped"),
            "key": await post(gw, "private", envelope(event(8), "m-key"), **{"X-API-KEY": "k-writer"}),
            "bearer": await post(gw, "private", envelope(event(9), "m-bearer"), Authorization="Bearer k-writer"),
            "unknown dataset, anonymous": await post(gw, "nope", envelope(event(10), "m-x")),
            "unknown dataset, bad envelope": await post(gw, "nope", {"id": "api.data.in"}),
            "private, bad envelope": await post(gw, "private", {"id": "api.data.in"}),
        }  # fmt: skip
    status = {
        name: (s, body["responseCode"], (body.get("error") or {}).get("code"))
        for name, (s, _, body) in answers.items()
    }
    assert status == {
        "anonymous, public": (200, "OK", None),
        "anonymous, private": (401, "UNAUTHORIZED", "UNAUTHORIZED_ACCESS"),
        "unknown key": (401, "UNAUTHORIZED", "UNAUTHORIZED_ACCESS"),
        "unknown key, public": (401, "UNAUTHORIZED", "UNAUTHORIZED_ACCESS"),  # a key sent is checked
        "no ingest": (403, "FORBIDDEN", "FORBIDDEN_ACCESS"),
        "out of scope": (403, "FORBIDDEN", "FORBIDDEN_ACCESS"),
        "in scope, bearer": (200, "OK", None),
        "key": (200, "OK", None),
        "bearer": (200, "OK", None),
        "unknown dataset, anonymous": (404, "BAD_REQUEST", "DATASET_NOT_FOUND"),
        "unknown dataset, bad envelope": (400, "BAD_REQUEST", "DATA_INGESTION_INVALID_INPUT"),
        "private, bad envelope": (401, "UNAUTHORIZED", "UNAUTHORIZED_ACCESS"),  # access first
    }  # fmt: skip
    _, _, refused = answers["anonymous, private"]
    assert refused["id"] == "api.data.in"
    assert refused["params"]["status"] == "FAILED"
    assert "anonymous" in refused["error"]["message"]
    assert sorted(await asyncio.to_thread(msgids, kafka_bootstrap, open_topic, 2)) == [
        "m-open-anon",
        "m-open-key",
    ]
    assert sorted(await asyncio.to_thread(msgids, kafka_bootstrap, private_topic, 2)) == ["m-bearer", "m-key"]


async def test_over_the_limits_is_429_with_retry_after_and_publishes_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    open_topic, private_topic, source, source_topic = (
        unique("open"),
        unique("private"),
        unique("src"),
        unique("source"),
    )
    async with running_gateway(
        kafka_bootstrap, datasets(open_topic, private_topic), tmp_path, principals=principals(),
        sources=[{"id": source, "topic": source_topic}],
    ) as gw:  # fmt: skip
        key = {"X-API-KEY": "k-slow"}
        first = await post(gw, "private", envelope([event(i) for i in range(3)], "m-1"), **key)
        # Three events of a burst of five are spent: four more are over the events' limit.
        over_events = await post(gw, "private", envelope([event(i) for i in range(4)], "m-2"), **key)
        # The request bucket (burst 2) is empty now: even a valid single event is refused.
        over_requests = await post(gw, "private", envelope(event(9), "m-3"), **key)
        async with gw.session.post(
            "/api/v1/source/import", json={"source_id": source, "payload": []}, headers=key
        ) as r:
            source_answer = (r.status, dict(r.headers), await r.json())
        async with gw.session.post(
            "/api/v1/import.new", headers={"X-User-Id": "slow", "X-Auth-Token": "k-slow"}
        ) as r:
            operation_answer = (r.status, dict(r.headers), await r.json())
        other = await post(gw, "private", envelope(event(1), "m-writer"), **{"X-API-KEY": "k-writer"})
    assert first[0] == 200
    assert other[0] == 200  # another principal is not limited by this one's use
    for status, headers, body in (over_events, over_requests):
        assert status == 429, body
        assert (body["responseCode"], body["error"]["code"]) == ("TOO_MANY_REQUESTS", "RATE_LIMITED")
        assert int(headers["Retry-After"]) >= 1
    assert over_events[2]["params"]["msgid"] == "m-2"
    assert int(over_events[1]["Retry-After"]) == 2  # 2 events short at 1/s
    assert source_answer[0] == 429
    assert set(source_answer[2]) == {"message", "errors"}
    assert "Retry-After" in source_answer[1]
    assert operation_answer[0] == 429
    assert operation_answer[2]["success"] is False
    assert "Retry-After" in operation_answer[1]
    assert sorted(await asyncio.to_thread(msgids, kafka_bootstrap, private_topic, 4)) == [
        "m-1", "m-1", "m-1", "m-writer",
    ]  # fmt: skip


async def test_anonymous_callers_are_limited_per_address_behind_trusted_proxies(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    open_topic = unique("open")
    async with running_gateway(
        kafka_bootstrap, datasets(open_topic, unique("private")), tmp_path,
        principals=principals(anonymous={"requests_per_s": 0.1, "requests_burst": 1}),
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),),
    ) as gw:  # fmt: skip
        a1 = await post(gw, "open", envelope(event(1), "a1"), **{"X-Forwarded-For": "198.51.100.1"})
        a2 = await post(gw, "open", envelope(event(2), "a2"), **{"X-Forwarded-For": "198.51.100.1"})
        b1 = await post(gw, "open", envelope(event(3), "b1"), **{"X-Forwarded-For": "198.51.100.2"})
        # A client's own header, left of what the trusted proxy appended, is not believed.
        b2 = await post(
            gw, "open", envelope(event(4), "b2"), **{"X-Forwarded-For": "203.0.113.7, 198.51.100.2"}
        )
        keyed = await post(gw, "open", envelope(event(5), "k1"), **{"X-API-KEY": "k-writer"})
    assert [a[0] for a in (a1, a2, b1, b2, keyed)] == [200, 429, 200, 429, 200]
    assert int(a2[1]["Retry-After"]) == 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_metrics_can_be_served_on_a_port_of_their_own(kafka_bootstrap: str, tmp_path: Path) -> None:
    metrics_port = _free_port()
    async with running_gateway(
        kafka_bootstrap, datasets(unique("open"), unique("private")), tmp_path, metrics_port=metrics_port
    ) as gw:
        async with gw.session.get("/metrics") as r:
            on_api = r.status
        async with gw.session.get("/health") as r:
            health = r.status
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                scraped = r.status, await r.text()
    assert (on_api, health) == (404, 200)
    assert scraped[0] == 200
    assert "gateway_http_requests_total" in scraped[1]


async def test_every_answer_carries_the_security_headers(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with running_gateway(
        kafka_bootstrap, datasets(unique("open"), unique("private")), tmp_path, principals=principals()
    ) as gw:
        answers = [
            (await post(gw, "open", envelope(event(1))))[1],
            (await post(gw, "private", envelope(event(1))))[1],
            (await post(gw, "open", {"id": 1}))[1],
        ]
        for method, path in (("GET", "/nowhere"), ("DELETE", "/v2/data/in/open"), ("GET", "/metrics"),
                             ("GET", "/docs"), ("GET", "/api/v1/job/x")):  # fmt: skip
            async with gw.session.request(method, path) as r:
                answers.append(dict(r.headers))
    for headers in answers:
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Request-ID"]


async def test_unknown_or_missing_credentials_count_against_the_anonymous_limits(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with running_gateway(
        kafka_bootstrap, datasets(unique("open"), unique("private")), tmp_path,
        principals=principals(anonymous={"requests_per_s": 0.1, "requests_burst": 2}),
        sources=[{"id": "src", "topic": unique("source")}],
    ) as gw:  # fmt: skip
        guesses = [
            (await post(gw, "private", envelope(event(i)), **{"X-API-KEY": f"guess-{i}"}))[0]
            for i in range(3)
        ]
        async with gw.session.post("/api/v1/source/import", json={"source_id": "src", "payload": []},
                                   headers={"X-API-KEY": "guess"}) as r:  # fmt: skip
            source = r.status, r.headers.get("Retry-After")
        async with gw.session.post(
            "/api/v1/import.new", headers={"X-User-Id": "x", "X-Auth-Token": "guess"}
        ) as r:
            operation = r.status
        known = await post(gw, "private", envelope(event(9)), **{"X-API-KEY": "k-writer"})
    assert guesses == [401, 401, 429]  # a burst of two guesses, then told to wait
    assert source[0] == 429
    assert source[1] is not None
    assert operation == 429
    assert known[0] == 200  # a known key is not held back by the guesses from its address
