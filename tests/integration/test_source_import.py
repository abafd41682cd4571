"""``POST /api/v1/source/import`` on real Kafka, its entries persisted by the real sink: the answer,
every entry a row once, and each refusal in the family's own error format."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from ingest_core.auth import parse_principals
from ingest_core.jobs import open_job_store
from tests.support.gateway import running_gateway
from tests.support.kafka import unique
from tests.support.sink import running_sink
from tests.support.store import wait_for_rows

pytestmark = pytest.mark.integration

PATH = "/api/v1/source/import"


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


PRINCIPALS = parse_principals(
    {
        "principals": [
            {"id": "ops", "key_sha256": _sha("k-ops"), "permissions": ["source-import"]},
            {
                "id": "other",
                "key_sha256": _sha("k-other"),
                "permissions": ["source-import"],
                "scopes": ["elsewhere"],
            },
            {"id": "jsonl", "key_sha256": _sha("k-jsonl"), "permissions": ["import"]},
        ]
    },
    Path("auth.yaml"),
)


def entry(i: int) -> dict[str, str]:
    return {"date": "2024-03-08 00:29:00", "name": f"User {i}", "content": f"Feedback {i}"}


async def test_every_entry_is_published_acknowledged_and_stored_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    source, topic = unique("src"), unique("source")
    sources = [{"id": source, "topic": topic}]
    async with running_gateway(kafka_bootstrap, [], tmp_path, sources=sources, principals=PRINCIPALS) as gw:
        body = {"source_id": source, "payload": [entry(i) for i in range(1000)]}
        async with gw.session.post(PATH, json=body, headers={"X-API-KEY": "k-ops"}) as r:
            status, answer = r.status, await r.json()
        registry = gw.registry
    assert status == 200, answer
    assert answer["message"] == "REST import started successfully"
    import_id = answer["import_id"]
    assert import_id.startswith("import_")
    assert len(import_id) == len("import_") + 26
    jobs = open_job_store(f"sqlite:///{tmp_path / 'jobs.db'}")  # the gateway's (tests.support.gateway)
    try:
        job = await jobs.get(import_id)
    finally:
        await jobs.close()
    assert job is not None
    assert (job.kind, job.status, job.target, job.principal, job.progress) == (
        "source-import", "COMPLETE", source, "ops", 100,
    )  # fmt: skip
    assert (job.total, job.imported, job.failed) == (1000, 1000, 0)
    store_url = f"sqlite:///{tmp_path / 'rows.db'}"
    async with running_sink(kafka_bootstrap, registry, store_url):
        rows = await wait_for_rows(store_url, 1000, timeout_s=60)
    assert len(rows) == 1000
    assert {r["event_id"] for r in rows} == {f"{import_id}:{i}" for i in range(1000)}
    assert {(r["dataset"], r["msgid"], r["topic"]) for r in rows} == {(source, import_id, topic)}


@pytest.mark.parametrize(
    ("headers", "body", "status", "message", "paths"),
    [
        ({}, None, 401, "Missing or invalid credentials", []),
        ({"X-API-KEY": "wrong"}, None, 401, "Missing or invalid credentials", []),
        ({"X-API-KEY": "k-jsonl"}, None, 403, "lack the permission", []),  # no source-import
        ({"X-API-KEY": "k-other"}, None, 403, "may not import into source", []),  # out of scope
        ({"X-API-KEY": "k-ops"}, b"{not json", 400, "not valid JSON", []),
        ({"X-API-KEY": "k-ops"}, {"payload": [entry(0)]}, 400, "malformed", [""]),
        ({"X-API-KEY": "k-ops"}, {"source_id": "S", "payload": {"date": "x"}}, 400, "malformed", ["payload"]),
        ({"X-API-KEY": "k-ops"}, {"source_id": "S", "payload": [{**entry(0), "name": 7}]}, 400, "malformed", ["payload[0].name"]),
        (
            {"X-API-KEY": "k-ops"},
            {"source_id": "S", "payload": [entry(0), {**entry(1), "date": "2024-03-08T00:29"}, {"name": "n", "content": "c"}]},
            400, "malformed (2 problems)", ["payload[1].date", "payload[2]"],
        ),
        ({"X-API-KEY": "k-ops"}, {"source_id": "S", "payload": [{**entry(0), "date": "2024-02-30 00:00:00"}]}, 400, "malformed", ["payload[0].date"]),
        ({"X-API-KEY": "k-ops"}, {"source_id": "nope", "payload": [entry(0)]}, 404, "Unknown source_id 'nope'", ["source_id"]),
    ],
)  # fmt: skip
async def test_refusals_say_what_is_wrong_and_where(
    kafka_bootstrap: str, tmp_path: Path, headers: dict[str, str], body: Any, status: int, message: str,
    paths: list[str],
) -> None:  # fmt: skip
    sources = [{"id": "S", "topic": unique("source")}]
    async with running_gateway(kafka_bootstrap, [], tmp_path, sources=sources, principals=PRINCIPALS) as gw:
        payload = body if body is not None else {"source_id": "S", "payload": [entry(0)]}
        kwargs: dict[str, Any] = {"data": payload} if isinstance(payload, bytes) else {"json": payload}
        async with gw.session.post(PATH, headers=headers, **kwargs) as r:
            got, answer = r.status, await r.json()
    assert got == status, answer
    assert message in answer["message"], answer
    assert [e["path"] for e in answer["errors"]] == paths, answer
    assert all(e["message"] for e in answer["errors"])


async def test_kafka_down_is_503_with_retry_after(tmp_path: Path) -> None:
    # A gateway whose Kafka went away after start: the import is not acknowledged.
    from tests.support.kafka import LocalBroker, free_port_pair

    broker = LocalBroker(tmp_path / "kafka", free_port_pair())
    broker.start()
    try:
        sources = [{"id": "S", "topic": unique("source")}]
        async with running_gateway(
            broker.bootstrap, [], tmp_path, sources=sources, principals=PRINCIPALS, delivery_timeout_ms=1500
        ) as gw:
            broker.stop()
            body = {"source_id": "S", "payload": [entry(0)]}
            async with gw.session.post(PATH, json=body, headers={"X-API-KEY": "k-ops"}) as r:
                status, retry_after, answer = r.status, r.headers.get("Retry-After"), await r.json()
    finally:
        broker.stop()
    assert status == 503, answer
    assert retry_after is not None
    assert answer["errors"] == []
