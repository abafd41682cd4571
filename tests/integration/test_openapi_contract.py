"""The OpenAPI document against the gateway itself: a real request for every response the document
lists (route, method, status), each answer's status and body checked against the document's
schema for it. The document is also a valid OpenAPI 3.1 document. Failures the tests cannot cause
from outside (an internal error, Kafka not acknowledging) are injected into the running app."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from openapi_spec_validator import validate as validate_spec

from gateway import openapi
from gateway.context import CONTEXT
from gateway.routes.jsonl_import import UPLOADS
from ingest_core.auth import parse_principals
from ingest_core.errors import KafkaUnavailable, StorageFull
from ingest_core.kafka import TopicSpec, ensure_topics
from ingest_core.upload_token import sign
from tests.support.gateway import EXAMPLE_SCHEMA, GatewayHandle, envelope, running_gateway
from tests.support.kafka import ROOT, free_port_pair, unique

pytestmark = pytest.mark.integration

KEY = "signing-key-of-the-contract"
DOCUMENT = openapi.build()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


PRINCIPALS = parse_principals(
    {
        "principals": [
            {"id": "all", "key_sha256": _digest("k-all"), "permissions": ["ingest", "source-import", "entity-import", "import", "run-import"]},
            {"id": "none", "key_sha256": _digest("k-none"), "permissions": ["ingest"], "scopes": ["example"]},
            {
                "id": "slow", "key_sha256": _digest("k-slow"), "limits": {"requests_per_s": 0.001, "requests_burst": 1},
                "permissions": ["ingest", "source-import", "entity-import", "import", "run-import"],
            },
        ]
    },
    Path("auth.yaml"),
)  # fmt: skip
BEARER = {"Authorization": "Bearer k-all"}
SLOW_KEY = {"X-API-KEY": "k-slow"}  # a principal of one request per 1,000 s: its second is 429
SLOW_BEARER = {"Authorization": "Bearer k-slow"}
SLOW_USER = {"X-User-Id": "slow", "X-Auth-Token": "k-slow"}
USER = {"X-User-Id": "all", "X-Auth-Token": "k-all"}
CSV = {"type": "csv", "mapping": json.dumps({"1": "name"})}

Answer = tuple[int, str, bytes]  # status, content type, body
Call = Callable[["Gateways"], Awaitable[Answer]]


class Gateways:
    """The gateway under test, and one whose job store does not answer (for the 503s)."""

    def __init__(self, ok: GatewayHandle, store_down: GatewayHandle, uploads: Path) -> None:
        self.ok, self.store_down = ok, store_down
        self.uploads = uploads  # the UPLOAD_DIR of ``ok``

    async def call(self, method: str, path: str, down: bool = False, **kwargs: Any) -> Answer:
        gw = self.store_down if down else self.ok
        async with gw.session.request(method, path, **kwargs) as r:
            return r.status, r.content_type, await r.read()


def form(data: bytes | None = b"name\nAnn\n", **fields: str) -> aiohttp.FormData:
    out = aiohttp.FormData(default_to_multipart=True)
    for name, value in {**CSV, **fields}.items():
        out.add_field(name, value)
    if data is not None:
        out.add_field("file", io.BytesIO(data), filename="c.csv")
    return out


def data_in(g: Gateways, body: Any, dataset: str = "example", **kwargs: Any) -> Awaitable[Answer]:
    return g.call("POST", f"/v2/data/in/{dataset}", json=body, **kwargs)


async def body_timeout(g: Gateways) -> Answer:
    """A body that never arrives in full: 408 once BODY_TIMEOUT_MS has passed."""
    reader, writer = await asyncio.open_connection(g.ok.host, g.ok.port)
    writer.write(b"POST /v2/data/in/example HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"id\":")  # fmt: skip
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    body = await reader.readexactly(length)
    writer.close()
    return int(head.split()[1]), "application/json", body


async def injected(g: Gateways, fault: BaseException, call: Call) -> Answer:
    """``call`` while the app's publisher raises ``fault``."""
    publisher = g.ok.app[CONTEXT].publisher() if g.ok.app else None
    assert publisher is not None
    original = publisher.publish

    async def failing(*_args: Any, **_kwargs: Any) -> None:
        raise fault

    publisher.publish = failing  # type: ignore[method-assign]
    try:
        return await call(g)
    finally:
        publisher.publish = original  # type: ignore[method-assign]


async def internal_error(g: Gateways) -> Answer:
    assert g.ok.app is not None
    ingestor = g.ok.app[CONTEXT].ingestor
    original = ingestor.prepare_body

    def broken(*_args: Any) -> Any:
        raise RuntimeError("injected")

    ingestor.prepare_body = broken  # type: ignore[method-assign,assignment]
    try:
        return await data_in(g, envelope({"eid": "x"}, msgid="m-500"))
    finally:
        ingestor.prepare_body = original  # type: ignore[method-assign]


async def not_ready(g: Gateways) -> Answer:
    assert g.ok.app is not None
    ctx = g.ok.app[CONTEXT]
    publisher = ctx.publisher()
    ctx.set_publisher(None)
    try:
        return await g.call("GET", "/ready")
    finally:
        ctx.set_publisher(publisher)


async def new_import(g: Gateways) -> str:
    status, _, body = await g.call("POST", "/v1/import", headers=BEARER)
    assert status == 200
    return str(json.loads(body)["import_id"])


async def upload(g: Gateways, import_id: str | None = None, down: bool = False, **kwargs: Any) -> Answer:
    import_id = import_id or await new_import(g)
    token = sign(KEY.encode(), import_id)
    kwargs.setdefault("data", b'{"type": "t", "data": {}}\n')
    return await g.call("PUT", f"/v1/import/{import_id}/upload?token={token}", down=down, **kwargs)


async def disk_full(g: Gateways) -> Answer:
    """An upload whose partial file is /dev/full: every write is ENOSPC."""
    import_id = await new_import(g)
    g.uploads.mkdir(exist_ok=True)
    (g.uploads / f".{import_id}.{os.getpid()}.partial").symlink_to("/dev/full")
    return await upload(g, import_id, data=b'{"type": "t", "data": {}}\n' * 100)


async def entity_disk_full(g: Gateways) -> Answer:
    """The entity upload while the blob store answers that the disk is full."""
    assert g.ok.app is not None
    blobs = g.ok.app[UPLOADS].blobs
    original = blobs.put

    async def full(*_args: Any, **_kwargs: Any) -> int:
        raise StorageFull()

    blobs.put = full  # type: ignore[method-assign]
    try:
        return await g.call(
            "POST", "/api/v1/entities/customers/import", data=form(), headers={**BEARER, "domain": "d"}
        )
    finally:
        blobs.put = original  # type: ignore[method-assign]


async def uploaded_twice(g: Gateways) -> Answer:
    import_id = await new_import(g)
    assert (await upload(g, import_id))[0] == 200
    return await upload(g, import_id)


async def job_id(g: Gateways) -> str:
    status, _, body = await g.call(
        "POST", "/api/v1/entities/customers/import", data=form(), headers={**BEARER, "domain": "d"}
    )
    assert status == 200, body
    return str(json.loads(body)["data"]["id"])


async def operation(g: Gateways, *calls: tuple[str, str, Any]) -> Answer:
    """``import.new``, then ``calls`` (method, name, JSON body); the last one's answer."""
    answer = await g.call("POST", "/api/v1/import.new", headers=USER)
    for method, name, body in calls:
        answer = await g.call(method, f"/api/v1/{name}", headers=USER, json=body)
    return answer


SOURCE = {"source_id": "your_id", "payload": [{"date": "2024-03-08 00:29:00", "name": "n", "content": "c"}]}
USERS = {"users": [{"username": "ann", "emails": ["ann@example.com"], "importIds": ["a1"]}]}
ENTITY = "/api/{version}/entities/{entity}/import"
JOB = "/api/{version}/job/{id}"

CASES: dict[tuple[str, str, str], Call] = {
    ("/v2/data/in/{dataset_id}", "post", "200"): lambda g: data_in(g, envelope({"eid": "ok"}, msgid="m-200")),
    ("/v2/data/in/{dataset_id}", "post", "400"): lambda g: g.call("POST", "/v2/data/in/example", data=b"{nope"),
    ("/v2/data/in/{dataset_id}", "post", "401"): lambda g: data_in(g, envelope({"eid": "x"}), dataset="private"),
    ("/v2/data/in/{dataset_id}", "post", "403"): lambda g: data_in(
        g, envelope({"eid": "x"}), dataset="private", headers={"X-API-KEY": "k-none"}
    ),
    ("/v2/data/in/{dataset_id}", "post", "429"): lambda g: limited(
        lambda: data_in(g, envelope({"eid": "x"}), dataset="private", headers={"X-API-KEY": "k-slow"})
    ),
    ("/v2/data/in/{dataset_id}", "post", "404"): lambda g: data_in(g, envelope({"eid": "x"}), dataset="nope"),
    ("/v2/data/in/{dataset_id}", "post", "405"): lambda g: g.call("GET", "/v2/data/in/example"),
    ("/v2/data/in/{dataset_id}", "post", "408"): body_timeout,
    ("/v2/data/in/{dataset_id}", "post", "413"): lambda g: g.call("POST", "/v2/data/in/example", data=io.BytesIO(b" " * 2_000_000)),
    ("/v2/data/in/{dataset_id}", "post", "415"): lambda g: g.call(
        "POST", "/v2/data/in/example", data=b"{}", headers={"Content-Encoding": "br"}
    ),
    ("/v2/data/in/{dataset_id}", "post", "500"): internal_error,
    ("/v2/data/in/{dataset_id}", "post", "503"): lambda g: injected(
        g, KafkaUnavailable(), lambda g: data_in(g, envelope({"eid": "x"}, msgid="m-503"))
    ),
    ("/api/v1/source/import", "post", "200"): lambda g: g.call("POST", "/api/v1/source/import", headers={"X-API-KEY": "k-all"}, json=SOURCE),
    ("/api/v1/source/import", "post", "400"): lambda g: g.call("POST", "/api/v1/source/import", headers={"X-API-KEY": "k-all"}, json={"payload": 1}),
    ("/api/v1/source/import", "post", "401"): lambda g: g.call("POST", "/api/v1/source/import", json=SOURCE),
    ("/api/v1/source/import", "post", "403"): lambda g: g.call("POST", "/api/v1/source/import", headers={"X-API-KEY": "k-none"}, json=SOURCE),
    ("/api/v1/source/import", "post", "404"): lambda g: g.call(
        "POST", "/api/v1/source/import", headers={"X-API-KEY": "k-all"}, json={**SOURCE, "source_id": "nope"}
    ),
    ("/api/v1/source/import", "post", "413"): lambda g: g.call(
        "POST", "/api/v1/source/import", headers={"X-API-KEY": "k-all"}, data=io.BytesIO(b" " * 2_000_000)
    ),
    ("/api/v1/source/import", "post", "503"): lambda g: injected(
        g, KafkaUnavailable(), lambda g: g.call("POST", "/api/v1/source/import", headers={"X-API-KEY": "k-all"}, json=SOURCE)
    ),
    ("/api/v1/source/import", "post", "429"): lambda g: limited(lambda: g.call("POST", "/api/v1/source/import", headers=SLOW_KEY, json=SOURCE)),
    ("/v1/import", "post", "200"): lambda g: g.call("POST", "/v1/import", headers=BEARER),
    ("/v1/import", "post", "401"): lambda g: g.call("POST", "/v1/import"),
    ("/v1/import", "post", "403"): lambda g: g.call("POST", "/v1/import", headers={"Authorization": "Bearer k-none"}),
    ("/v1/import", "post", "503"): lambda g: g.call("POST", "/v1/import", headers=BEARER, down=True),
    ("/v1/import", "post", "429"): lambda g: limited(lambda: g.call("POST", "/v1/import", headers=SLOW_BEARER)),
    ("/v1/import/{import_id}/upload", "put", "200"): lambda g: upload(g),
    ("/v1/import/{import_id}/upload", "put", "403"): lambda g: g.call("PUT", "/v1/import/import_x/upload?token=bad", data=b"x"),
    ("/v1/import/{import_id}/upload", "put", "404"): lambda g: upload(g, "import_01aaaaaaaaaaaaaaaaaaaaaaaa"),
    ("/v1/import/{import_id}/upload", "put", "409"): uploaded_twice,
    ("/v1/import/{import_id}/upload", "put", "413"): lambda g: upload(g, data=b"x" * 20_000),
    ("/v1/import/{import_id}/upload", "put", "415"): lambda g: upload(g, headers={"Content-Encoding": "gzip"}),
    ("/v1/import/{import_id}/upload", "put", "507"): disk_full,
    ("/v1/import/{import_id}/upload", "put", "503"): lambda g: upload(g, "import_01aaaaaaaaaaaaaaaaaaaaaaab", down=True),
    ("/v1/import/{import_id}", "get", "200"): lambda g: _then(new_import(g), lambda i: g.call("GET", f"/v1/import/{i}", headers=BEARER)),
    ("/v1/import/{import_id}", "get", "401"): lambda g: g.call("GET", "/v1/import/import_x"),
    ("/v1/import/{import_id}", "get", "403"): lambda g: g.call("GET", "/v1/import/import_x", headers={"Authorization": "Bearer k-none"}),
    ("/v1/import/{import_id}", "get", "404"): lambda g: g.call("GET", "/v1/import/import_x", headers=BEARER),
    ("/v1/import/{import_id}", "get", "429"): lambda g: limited(lambda: g.call("GET", "/v1/import/import_x", headers=SLOW_BEARER)),
    (ENTITY, "post", "200"): lambda g: g.call("POST", "/api/v1/entities/customers/import", data=form(), headers={**BEARER, "domain": "d"}),
    (ENTITY, "post", "400"): lambda g: g.call("POST", "/api/v1/entities/customers/import", data=form(), headers=BEARER),
    (ENTITY, "post", "401"): lambda g: g.call("POST", "/api/v1/entities/customers/import", data=form(), headers={"domain": "d"}),
    (ENTITY, "post", "403"): lambda g: g.call(
        "POST", "/api/v1/entities/customers/import", data=form(), headers={"Authorization": "Bearer k-none", "domain": "d"}
    ),
    (ENTITY, "post", "404"): lambda g: g.call("POST", "/api/v1/entities/nope/import", data=form(), headers={**BEARER, "domain": "d"}),
    (ENTITY, "post", "413"): lambda g: g.call(
        "POST", "/api/v1/entities/customers/import", data=form(b"x" * 20_000), headers={**BEARER, "domain": "d"}
    ),
    (ENTITY, "post", "415"): lambda g: g.call("POST", "/api/v1/entities/customers/import", json={}, headers={**BEARER, "domain": "d"}),
    (ENTITY, "post", "507"): entity_disk_full,
    (ENTITY, "post", "503"): lambda g: g.call(
        "POST", "/api/v1/entities/customers/import", data=form(), headers={**BEARER, "domain": "d"}, down=True
    ),
    (ENTITY, "post", "429"): lambda g: limited(
        lambda: g.call("POST", "/api/v1/entities/customers/import", data=form(), headers={**SLOW_BEARER, "domain": "d"})
    ),
    (JOB, "get", "200"): lambda g: _then(job_id(g), lambda i: g.call("GET", f"/api/v1/job/{i}", headers=BEARER)),
    (JOB, "get", "401"): lambda g: g.call("GET", "/api/v1/job/x"),
    (JOB, "get", "403"): lambda g: g.call("GET", "/api/v1/job/x", headers={"Authorization": "Bearer k-none"}),
    (JOB, "get", "404"): lambda g: g.call("GET", "/api/v1/job/x", headers=BEARER),
    (JOB, "get", "429"): lambda g: limited(lambda: g.call("GET", "/api/v1/job/x", headers=SLOW_BEARER)),
    ("/api/v1/import.new", "post", "200"): lambda g: operation(g),
    ("/api/v1/import.new", "post", "401"): lambda g: g.call("POST", "/api/v1/import.new"),
    ("/api/v1/import.new", "post", "403"): lambda g: g.call("POST", "/api/v1/import.new", headers={"X-User-Id": "none", "X-Auth-Token": "k-none"}),
    ("/api/v1/import.new", "post", "503"): lambda g: g.call("POST", "/api/v1/import.new", headers=USER, down=True),
    ("/api/v1/import.new", "post", "429"): lambda g: limited(lambda: g.call("POST", "/api/v1/import.new", headers=SLOW_USER)),
    ("/api/v1/import.addUsers", "post", "200"): lambda g: operation(g, ("POST", "import.addUsers", USERS)),
    ("/api/v1/import.addUsers", "post", "400"): lambda g: operation(g, ("POST", "import.addUsers", {"users": [{}]})),
    ("/api/v1/import.addUsers", "post", "401"): lambda g: g.call("POST", "/api/v1/import.addUsers", json=USERS),
    ("/api/v1/import.addUsers", "post", "403"): lambda g: g.call("POST", "/api/v1/import.addUsers", json=USERS, headers={"X-User-Id": "none", "X-Auth-Token": "k-none"}),
    ("/api/v1/import.addUsers", "post", "429"): lambda g: limited(lambda: g.call("POST", "/api/v1/import.addUsers", json=USERS, headers=SLOW_USER)),
    ("/api/v1/import.run", "post", "200"): lambda g: operation(g, ("POST", "import.addUsers", USERS), ("POST", "import.run", None)),
    ("/api/v1/import.run", "post", "400"): lambda g: operation(g, ("POST", "import.run", None)),
    ("/api/v1/import.run", "post", "401"): lambda g: g.call("POST", "/api/v1/import.run"),
    ("/api/v1/import.run", "post", "403"): lambda g: g.call("POST", "/api/v1/import.run", headers={"X-User-Id": "none", "X-Auth-Token": "k-none"}),
    ("/api/v1/import.run", "post", "503"): lambda g: g.call("POST", "/api/v1/import.run", headers=USER, down=True),
    ("/api/v1/import.run", "post", "429"): lambda g: limited(lambda: g.call("POST", "/api/v1/import.run", headers=SLOW_USER)),
    ("/api/v1/import.status", "get", "200"): lambda g: g.call("GET", "/api/v1/import.status", headers=USER),
    ("/api/v1/import.status", "get", "401"): lambda g: g.call("GET", "/api/v1/import.status"),
    ("/api/v1/import.status", "get", "403"): lambda g: g.call("GET", "/api/v1/import.status", headers={"X-User-Id": "none", "X-Auth-Token": "k-none"}),
    ("/api/v1/import.status", "get", "429"): lambda g: limited(lambda: g.call("GET", "/api/v1/import.status", headers=SLOW_USER)),
    ("/api/v1/getCurrentImportOperation", "get", "200"): lambda g: g.call("GET", "/api/v1/getCurrentImportOperation", headers=USER),
    ("/api/v1/getCurrentImportOperation", "get", "401"): lambda g: g.call("GET", "/api/v1/getCurrentImportOperation"),
    ("/api/v1/getCurrentImportOperation", "get", "403"): lambda g: g.call(
        "GET", "/api/v1/getCurrentImportOperation", headers={"X-User-Id": "none", "X-Auth-Token": "k-none"}
    ),
    ("/api/v1/getCurrentImportOperation", "get", "429"): lambda g: limited(lambda: g.call("GET", "/api/v1/getCurrentImportOperation", headers=SLOW_USER)),
    ("/health", "get", "200"): lambda g: g.call("GET", "/health"),
    ("/ready", "get", "200"): lambda g: g.call("GET", "/ready"),
    ("/ready", "get", "503"): not_ready,
    ("/metrics", "get", "200"): lambda g: g.call("GET", "/metrics"),
    ("/openapi.json", "get", "200"): lambda g: g.call("GET", "/openapi.json"),
    ("/docs", "get", "200"): lambda g: g.call("GET", "/docs"),
}  # fmt: skip


async def limited(call: Callable[[], Awaitable[Answer]]) -> Answer:
    """The second of two calls of the slow principal: its bucket holds one request."""
    await call()
    return await call()


async def _then(first: Awaitable[str], then: Callable[[str], Awaitable[Answer]]) -> Answer:
    return await then(await first)


@asynccontextmanager
async def gateways(bootstrap: str, tmp_path: Path) -> AsyncIterator[Gateways]:
    jobs_topic = unique("jobs")
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(jobs_topic, 1)])
    registry: dict[str, Any] = {
        "sources": [{"id": "your_id", "topic": unique("source")}],
        "types": [{"type": "t", "topic": unique("type")}, {"type": "user", "topic": unique("user")}],
        "entities": [{"id": "customers", "topic": unique("entity"), "schema": str(ROOT / "schemas/entities/customers.json")}],
    }  # fmt: skip
    datasets: list[dict[str, Any]] = [
        {"id": "example", "entry_topic": unique("ingest"), "schema": str(EXAMPLE_SCHEMA)},
        {"id": "private", "entry_topic": unique("private"), "schema": str(EXAMPLE_SCHEMA), "public": False},
    ]
    common: dict[str, Any] = {
        "principals": PRINCIPALS, "jobs_topic": jobs_topic, "upload_signing_key": KEY, "max_upload_bytes": 10_000,
        "body_timeout_ms": 300, "max_body_bytes": 1_000_000, **registry,
    }  # fmt: skip
    dead_store = f"postgresql://nobody@127.0.0.1:{free_port_pair()}/none"
    (tmp_path / "down").mkdir()
    async with (
        running_gateway(bootstrap, datasets, tmp_path, **common) as ok,
        running_gateway(bootstrap, datasets, tmp_path / "down", store_url=dead_store, **common) as down,
    ):
        yield Gateways(ok, down, tmp_path / "uploads")


def test_the_document_is_valid_openapi_3_1() -> None:
    validate_spec(DOCUMENT)


def test_every_documented_response_has_a_case() -> None:
    documented = {
        (path, method, status)
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    }
    assert documented == set(CASES)


async def test_every_answer_matches_the_document(kafka_bootstrap: str, tmp_path: Path) -> None:
    checked = 0
    async with gateways(kafka_bootstrap, tmp_path) as g:
        for (path, method, status), call in CASES.items():
            got, content_type, body = await call(g)
            assert str(got) == status, (path, method, status, body[:500])
            content = DOCUMENT["paths"][path][method]["responses"][status]["content"]
            assert content_type in content, (path, method, status, content_type)
            if content_type == "application/json":
                schema = {**content[content_type]["schema"], "components": DOCUMENT["components"]}
                errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.loads(body)))
                assert not errors, (path, method, status, [e.message for e in errors][:3], body[:500])
            checked += 1
    assert checked == len(CASES)
