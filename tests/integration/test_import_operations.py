"""Import operations end to end on real Kafka and a real store: the gateway stages users in an
operation and queues its run, the import worker (a real process) publishes them, the sink stores
them."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from ingest_core.auth import parse_principals
from ingest_core.jobs import open_job_store
from ingest_core.kafka import TopicSpec, ensure_topics
from tests.support.gateway import GatewayHandle, running_gateway
from tests.support.importer import importer_process
from tests.support.kafka import ROOT, free_port_pair, unique
from tests.support.sink import running_sink
from tests.support.store import wait_for_rows

pytestmark = pytest.mark.integration


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


PRINCIPALS = parse_principals(
    {
        "principals": [
            {"id": "rbAXPnMktTFbNpwtJ", "key_sha256": _key("t-ops"), "permissions": ["run-import"]},
            {"id": "other", "key_sha256": _key("t-other"), "permissions": ["run-import"]},
            {"id": "reader", "key_sha256": _key("t-reader"), "permissions": ["import", "entity-import"]},
        ]
    },
    Path("auth.yaml"),
)  # fmt: skip
AUTH = {"X-User-Id": "rbAXPnMktTFbNpwtJ", "X-Auth-Token": "t-ops"}
UNAUTHORIZED = b'{"status": "error", "message": "You must be logged in to do this."}'
FORBIDDEN = b'{"success": false, "error": "User does not have the permissions required for this action [error-unauthorized]"}'
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Setup:
    def __init__(self, bootstrap: str, tmp_path: Path, store_url: str | None = None) -> None:
        self.bootstrap, self.tmp = bootstrap, tmp_path
        self.jobs_topic = unique("jobs")
        self.topic = unique("import.user")
        self.types = [{"type": "user", "topic": self.topic, "schema": str(ROOT / "schemas/types/user.json")}]
        self.store_url = store_url or f"sqlite:///{tmp_path / 'jobs.db'}"

    @asynccontextmanager
    async def gateway(self) -> AsyncIterator[GatewayHandle]:
        await asyncio.to_thread(ensure_topics, self.bootstrap, [TopicSpec(self.jobs_topic, 3)])
        async with running_gateway(
            self.bootstrap, [], self.tmp, principals=PRINCIPALS, types=self.types, jobs_topic=self.jobs_topic,
            store_url=self.store_url,
        ) as gw:  # fmt: skip
            yield gw

    @contextmanager
    def importer(self) -> Iterator[subprocess.Popen[bytes]]:
        with importer_process(
            self.bootstrap, self.tmp, self.store_url, self.jobs_topic, free_port_pair()
        ) as p:
            yield p


async def call(
    gw: GatewayHandle, method: str, name: str, body: Any = None, headers: dict[str, str] = AUTH
) -> tuple[int, Any]:
    async with gw.session.request(method, f"/api/v1/{name}", json=body, headers=headers) as r:
        return r.status, await r.json()


async def raw(gw: GatewayHandle, method: str, name: str, headers: dict[str, str]) -> tuple[int, bytes]:
    async with gw.session.request(method, f"/api/v1/{name}", headers=headers) as r:
        return r.status, await r.read()


def user(n: int, email: str | None = None, username: str | None = None) -> dict[str, Any]:
    return {
        "username": username or f"user{n}", "emails": [email or f"user{n}@example.com"], "importIds": [f"imp-{n}"],
        "name": f"User {n}", "active": True,
    }  # fmt: skip


async def until_state(gw: GatewayHandle, wanted: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code, body = await call(gw, "GET", "import.status")
        assert code == 200, body
        if body["status"] == wanted:
            return dict(body)
        await asyncio.sleep(0.1)
    raise AssertionError(f"the operation is not {wanted} after {timeout_s}s: {body}")


async def test_new_add_users_run_done_with_the_users_persisted(
    kafka_bootstrap: str, tmp_path: Path, store_url: str
) -> None:
    s = Setup(kafka_bootstrap, tmp_path, store_url)  # operations on SQLite, then on PostgreSQL
    async with s.gateway() as gw:
        assert await call(gw, "GET", "getCurrentImportOperation") == (
            200,
            {"success": True, "operation": None},
        )
        assert await call(gw, "GET", "import.status") == (
            200, {"success": True, "status": "none", "count": {"total": 0, "completed": 0, "error": 0}},
        )  # fmt: skip
        code, body = await call(gw, "POST", "import.new")
        assert code == 200, body
        assert list(body) == ["operation", "success"]
        assert body["success"] is True
        op = body["operation"]
        assert list(op) == ["_id", "type", "importerKey", "ts", "status", "valid", "user", "_updatedAt"]
        assert re.fullmatch(r"[0-9a-f]{24}", op["_id"]), op
        assert (op["type"], op["importerKey"], op["status"], op["valid"], op["user"]) == (
            "api", "api", "importer_new", True, "rbAXPnMktTFbNpwtJ",
        )  # fmt: skip
        assert ISO_MS.fullmatch(op["ts"]), op
        assert ISO_MS.fullmatch(op["_updatedAt"]), op
        assert (await call(gw, "GET", "getCurrentImportOperation"))[1]["operation"]["_id"] == op["_id"]
        assert (await call(gw, "GET", "import.status"))[1]["status"] == "new"
        # A bad user stages nothing: the answer names the first bad one by its index.
        bad = [user(1), {"username": "x", "emails": ["x@example.com"]}, {"username": "y"}]
        code, body = await call(gw, "POST", "import.addUsers", {"users": bad})
        assert code == 400, body
        assert body["success"] is False
        assert "users[1]" in body["error"], body
        assert "importIds" in body["error"], body
        assert (await call(gw, "GET", "import.status"))[1]["status"] == "new"
        staged = [user(1), user(2), user(3, email="USER1@example.com"), user(4, username="User2")]
        assert await call(gw, "POST", "import.addUsers", {"users": staged[:2]}) == (200, {"success": True})
        assert await call(gw, "POST", "import.addUsers", {"users": staged[2:]}) == (200, {"success": True})
        code, body = await call(gw, "GET", "import.status")
        assert body == {"success": True, "status": "ready", "count": {"total": 4, "completed": 0, "error": 0}}
        assert (await call(gw, "GET", "getCurrentImportOperation"))[1]["operation"][
            "status"
        ] == "importer_user_selection"
        # Another principal has operations of its own.
        other = {"X-User-Id": "other", "X-Auth-Token": "t-other"}
        assert (await call(gw, "GET", "import.status", headers=other))[1]["status"] == "none"
        assert await call(gw, "POST", "import.run") == (200, {"success": True})
        with s.importer():
            final = await until_state(gw, "done")
        # Users 3 and 4 repeat user 1's email and user 2's username (ignoring case): errors, and the run went on.
        assert final["count"] == {"total": 4, "completed": 2, "error": 2}
        code, body = await call(gw, "POST", "import.addUsers", {"users": [user(9)]})
        assert (code, body["success"]) == (400, False)
        assert "is done" in body["error"], body
        registry = gw.registry
    rows_url = f"sqlite:///{tmp_path / 'rows.db'}"
    async with running_sink(kafka_bootstrap, registry, rows_url):
        rows = await wait_for_rows(rows_url, 2, timeout_s=60)
    assert sorted((r["event_id"], r["dataset"], r["topic"]) for r in rows) == [
        (f"{op['_id']}:imp-1", "user", s.topic), (f"{op['_id']}:imp-2", "user", s.topic),
    ]  # fmt: skip


async def test_a_new_operation_cancels_the_one_importing_and_clears_its_users(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    async with s.gateway() as gw:
        first = (await call(gw, "POST", "import.new"))[1]["operation"]["_id"]
        assert (await call(gw, "POST", "import.addUsers", {"users": [user(n) for n in range(50)]}))[0] == 200
        assert await call(gw, "POST", "import.run") == (200, {"success": True})
        assert (await call(gw, "GET", "import.status"))[1]["status"] == "importing"
        second = (await call(gw, "POST", "import.new"))[1]["operation"]["_id"]
        assert second != first
        jobs = open_job_store(s.store_url)
        try:
            cancelled = await jobs.get(first)
        finally:
            await jobs.close()
        assert cancelled is not None
        assert (cancelled.status, cancelled.request["users"]) == ("importer_import_cancelled", [])
        assert (await call(gw, "GET", "import.status"))[1]["status"] == "new"
        # The worker then gets the cancelled operation's command: it publishes nothing.
        with s.importer():
            await asyncio.sleep(5)
        assert (await call(gw, "GET", "import.status"))[1]["status"] == "new"
        registry = gw.registry
    rows_url = f"sqlite:///{tmp_path / 'rows.db'}"
    async with running_sink(kafka_bootstrap, registry, rows_url):
        assert await wait_for_rows(rows_url, 1, timeout_s=5) == []


async def test_each_call_in_the_wrong_state_is_a_400_naming_the_state(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    async with s.gateway() as gw:
        code, body = await call(gw, "POST", "import.run")
        assert (code, body["success"]) == (400, False)
        assert "is none" in body["error"], body
        code, body = await call(gw, "POST", "import.addUsers", {"users": [user(1)]})
        assert (code, "is none" in body["error"]) == (400, True), body
        assert (await call(gw, "POST", "import.new"))[0] == 200
        code, body = await call(gw, "POST", "import.run")
        assert (code, "is new" in body["error"]) == (400, True), body
        code, body = await call(gw, "POST", "import.addUsers", {"people": []})
        assert (code, body["success"]) == (400, False)
        async with gw.session.post("/api/v1/import.addUsers", data=b"{nope", headers=AUTH) as r:
            assert (r.status, (await r.json())["error"]) == (400, "The body is not valid JSON")
        assert (await call(gw, "POST", "import.addUsers", {"users": [user(1)]}))[0] == 200
        assert (await call(gw, "POST", "import.run"))[0] == 200
        code, body = await call(gw, "POST", "import.run")
        assert (code, "is importing" in body["error"]) == (400, True), body
        code, body = await call(gw, "POST", "import.addUsers", {"users": [user(2)]})
        assert (code, "is importing" in body["error"]) == (400, True), body
        assert (await call(gw, "POST", "import.new"))[0] == 200  # cancels it
        code, body = await call(gw, "GET", "import.status")
        assert body["status"] == "new"


@pytest.mark.parametrize(
    ("method", "name"),
    [("POST", "import.new"), ("POST", "import.addUsers"), ("POST", "import.run"), ("GET", "import.status"),
     ("GET", "getCurrentImportOperation")],
)  # fmt: skip
async def test_401_and_403_are_the_references_bodies_byte_for_byte(
    kafka_bootstrap: str, tmp_path: Path, method: str, name: str
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    async with s.gateway() as gw:
        for headers in (
            {},
            {"X-User-Id": "rbAXPnMktTFbNpwtJ"},
            {"X-Auth-Token": "t-ops"},
            {"X-User-Id": "rbAXPnMktTFbNpwtJ", "X-Auth-Token": "wrong"},
            {"X-User-Id": "other", "X-Auth-Token": "t-ops"},  # a token of another user
        ):
            assert await raw(gw, method, name, headers) == (401, UNAUTHORIZED), headers
        assert await raw(gw, method, name, {"X-User-Id": "reader", "X-Auth-Token": "t-reader"}) == (
            403,
            FORBIDDEN,
        )
