"""JSONL imports end to end on real Kafka and a real store: the gateway makes the import and its
signed upload URL, takes the upload, the import worker (``ingest-importer``, a real process) runs
it, the sink stores its rows."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ingest_core.auth import parse_principals
from ingest_core.kafka import TopicSpec, ensure_topics
from ingest_core.upload_token import sign
from tests.support.gateway import GatewayHandle, running_gateway
from tests.support.importer import importer_process
from tests.support.kafka import ROOT, free_port_pair, unique
from tests.support.postgres import LocalPostgres
from tests.support.sink import running_sink
from tests.support.store import wait_for_rows

pytestmark = pytest.mark.integration

KEY = "signing-key-of-the-tests"
SECRET = "k-import"
PRINCIPALS = parse_principals(
    {
        "principals": [
            {"id": "imp", "key_sha256": hashlib.sha256(SECRET.encode()).hexdigest(), "permissions": ["import"]},
            {"id": "other", "key_sha256": hashlib.sha256(b"k-other").hexdigest(), "permissions": ["import"],
             "scopes": ["x"]},
        ]
    },
    Path("auth.yaml"),
)  # fmt: skip
AUTH = {"Authorization": f"Bearer {SECRET}"}
SCHEMA = ROOT / "schemas" / "types" / "user_profile.json"
REFERENCE = b"""{"type": "user_profile", "data": {"user_id": "12345", "name": "John Doe", "email": "john@example.com"}}
{"type": "transaction", "data": {"transaction_id": "tx_001", "amount": 99.99, "currency": "USD"}}
{"type": "user_profile", "data": {"user_id": "67890", "name": "Jane Smith", "email": "jane@example.com"}}
"""


class Setup:
    def __init__(
        self, bootstrap: str, tmp_path: Path, store_url: str | None = None, blob_store_url: str | None = None
    ) -> None:
        self.bootstrap, self.tmp, self.blob_store_url = bootstrap, tmp_path, blob_store_url
        self.jobs_topic = unique("jobs")
        self.types = [
            {"type": "user_profile", "topic": unique("import.user"), "schema": str(SCHEMA)},
            {"type": "transaction", "topic": unique("import.tx")},
        ]
        self.store_url = store_url or f"sqlite:///{tmp_path / 'jobs.db'}"

    @asynccontextmanager
    async def gateway(self) -> AsyncIterator[GatewayHandle]:
        await asyncio.to_thread(ensure_topics, self.bootstrap, [TopicSpec(self.jobs_topic, 3)])
        async with running_gateway(
            self.bootstrap, [], self.tmp, principals=PRINCIPALS, types=self.types, jobs_topic=self.jobs_topic,
            upload_signing_key=KEY, store_url=self.store_url, blob_store_url=self.blob_store_url,
        ) as gw:  # fmt: skip
            yield gw

    @contextmanager
    def importer(self) -> Iterator[subprocess.Popen[bytes]]:
        self.importer_port = free_port_pair()
        with importer_process(
            self.bootstrap, self.tmp, self.store_url, self.jobs_topic, self.importer_port, self.blob_store_url
        ) as p:
            yield p


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read().decode())


async def new_import(gw: GatewayHandle) -> tuple[str, str]:
    async with gw.session.post("/v1/import", headers=AUTH) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert body["import_status"] == "WAITING_FOR_UPLOAD"
    assert body["import_id"].startswith("import_")
    url = urlsplit(body["upload_url"])
    assert url.scheme == "http"
    return body["import_id"], f"{url.path}?{url.query}"


async def upload(gw: GatewayHandle, path: str, data: bytes) -> tuple[int, Any]:
    async with gw.session.put(
        path, data=io.BytesIO(data), headers={"Content-Type": "application/jsonl"}
    ) as r:
        return r.status, await r.json()


async def status(gw: GatewayHandle, import_id: str, headers: dict[str, str] = AUTH) -> tuple[int, Any]:
    async with gw.session.get(f"/v1/import/{import_id}", headers=headers) as r:
        return r.status, await r.json()


async def until_done(
    gw: GatewayHandle, import_id: str, store_url: str, timeout_s: float = 120
) -> tuple[dict[str, Any], list[int]]:
    """The final status, and every progress seen on the way (read from the job store directly)."""
    from ingest_core.jobs import open_job_store

    jobs = open_job_store(store_url)
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            job = await jobs.get(import_id)
            if job is not None:
                seen.append(job.progress)
            code, body = await status(gw, import_id)
            assert code == 200, body
            if body["import_status"] in ("COMPLETE", "FAILED"):
                return body, seen
            await asyncio.sleep(0.1)
    finally:
        await jobs.close()
    raise AssertionError(f"import {import_id} not done in {timeout_s}s")


@pytest.fixture(params=["directory", "s3"])
def blob_store_url(request: pytest.FixtureRequest) -> str | None:
    """Where uploads wait: UPLOAD_DIR, or a bucket of a real S3-compatible server."""
    return None if request.param == "directory" else str(request.getfixturevalue("s3_bucket"))


async def test_the_references_lines_end_up_as_rows_on_their_types_topics(
    kafka_bootstrap: str, tmp_path: Path, store_url: str, blob_store_url: str | None
) -> None:
    # The jobs on SQLite, then on PostgreSQL; the uploads in a directory, then in S3.
    s = Setup(kafka_bootstrap, tmp_path, store_url, blob_store_url)
    async with s.gateway() as gw:
        import_id, path = await new_import(gw)
        code, body = await upload(gw, path, REFERENCE)
        assert (code, body["import_status"]) == (200, "IN_PROGRESS"), body
        assert "queued" in body["message"]
        with s.importer():
            final, _ = await until_done(gw, import_id, s.store_url)
            metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{s.importer_port}/metrics")
        assert final["import_status"] == "COMPLETE", final
        assert final["counts"] == {"total": 3, "imported": 3, "failed": 0}
        assert 'importer_lines_total{outcome="imported"} 3.0' in metrics
        assert 'importer_jobs_finished_total{status="COMPLETE"} 1.0' in metrics
        assert final["errors"] == []
        # Someone else's key does not see it; no key is 401.
        assert (await status(gw, import_id, {"Authorization": "Bearer k-other"}))[0] == 404
        assert (await status(gw, import_id, {}))[0] == 401
        registry = gw.registry
    rows_url = f"sqlite:///{tmp_path / 'rows.db'}"
    async with running_sink(kafka_bootstrap, registry, rows_url):
        rows = await wait_for_rows(rows_url, 3, timeout_s=60)
    got = sorted((r["event_id"], r["dataset"], r["topic"]) for r in rows)
    assert got == [
        (f"{import_id}:1", "user_profile", s.types[0]["topic"]),
        (f"{import_id}:2", "transaction", s.types[1]["topic"]),
        (f"{import_id}:3", "user_profile", s.types[0]["topic"]),
    ]
    if blob_store_url is None:
        assert not (tmp_path / "uploads" / import_id).exists()  # a finished import's file is deleted


def _big_file(lines: int, bad_every: int) -> tuple[bytes, dict[int, str]]:
    kinds = [
        (b"{not json", "not valid JSON"),
        (b'{"type": "transaction"}', 'not an object with a string "type" and an object "data"'),
        (b'{"type": "nope", "data": {}}', "unknown type"),
        (b'{"type": "user_profile", "data": {"name": "no id"}}', "required property 'user_id'"),
        (b'{"type": "transaction", "data": {"x": "' + b"y" * 1_100_000 + b'"}}', "longer than"),
    ]
    out, bad = [], {}
    for n in range(1, lines + 1):
        if n % bad_every == 0:
            line, reason = kinds[(n // bad_every) % len(kinds)]
            bad[n] = reason
            out.append(line)
        else:
            out.append(b'{"type": "transaction", "data": {"n": %d, "pad": "%s"}}' % (n, b"p" * 40))
    return b"\n".join(out) + b"\n", bad


async def test_a_large_file_with_bad_lines_is_complete_and_reports_each(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    data, bad = _big_file(100_000, 1000)
    assert len(bad) == 100
    async with s.gateway() as gw:
        import_id, path = await new_import(gw)
        assert (await upload(gw, path, data))[0] == 200
        with s.importer():
            final, seen = await until_done(gw, import_id, s.store_url)
        registry = gw.registry
    assert final["import_status"] == "COMPLETE", final
    assert final["counts"] == {"total": 100_000, "imported": 99_900, "failed": 100}
    assert {e["line"] for e in final["errors"]} == set(bad)
    for error in final["errors"]:
        assert bad[error["line"]] in error["message"], error
    assert seen == sorted(seen)  # progress never goes backwards
    rows_url = f"sqlite:///{tmp_path / 'rows.db'}"
    async with running_sink(kafka_bootstrap, registry, rows_url, batch_size=5000):
        rows = await wait_for_rows(rows_url, 99_900, timeout_s=120)
    assert len(rows) == 99_900
    assert {r["event_id"] for r in rows} == {f"{import_id}:{n}" for n in range(1, 100_001) if n not in bad}


async def test_upload_urls_are_checked_and_used_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    async with s.gateway() as gw:
        import_id, path = await new_import(gw)
        expired = sign(KEY.encode(), import_id, now_s=time.time() - 7200)
        code, body = await upload(gw, f"/v1/import/{import_id}/upload?token={expired}", REFERENCE)
        assert (code, "expired" in body["message"]) == (403, True), body
        tampered = path.replace("token=import_", "token=import_0")
        assert (await upload(gw, tampered, REFERENCE))[0] == 403
        other_id, _ = await new_import(gw)
        assert (await upload(gw, path.replace(f"/{import_id}/", f"/{other_id}/"), REFERENCE))[0] == 403
        assert (await upload(gw, path, REFERENCE))[0] == 200
        code, body = await upload(gw, path, REFERENCE)
        assert code == 409, body
        code, body = await status(gw, "import_01aaaaaaaaaaaaaaaaaaaaaaaa")
        assert code == 404, body
        async with gw.session.post("/v1/import") as r:
            assert r.status == 401
        async with gw.session.post("/v1/import", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401


async def test_a_file_that_is_not_utf8_fails(kafka_bootstrap: str, tmp_path: Path) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    async with s.gateway() as gw:
        import_id, path = await new_import(gw)
        assert (await upload(gw, path, REFERENCE + b'{"type": "transaction", "data": {"x": "\xff\xfe"}}\n'))[
            0
        ] == 200
        with s.importer():
            final, _ = await until_done(gw, import_id, s.store_url)
    assert final["import_status"] == "FAILED", final
    assert any("not UTF-8" in e["message"] for e in final["errors"]), final


async def test_a_worker_killed_mid_file_resumes_and_stores_each_line_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    data, _ = _big_file(300_000, 10**9)
    from ingest_core.jobs import open_job_store

    async with s.gateway() as gw:
        import_id, path = await new_import(gw)
        assert (await upload(gw, path, data))[0] == 200
        jobs = open_job_store(s.store_url)
        try:
            with s.importer() as proc:
                deadline = time.monotonic() + 120
                while True:
                    job = await jobs.get(import_id)
                    assert job is not None
                    if 0 < job.checkpoint:
                        break
                    assert time.monotonic() < deadline, "the import never started"
                    await asyncio.sleep(0.02)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            killed_at = (await jobs.get(import_id)).checkpoint  # type: ignore[union-attr]
            assert 0 < killed_at < 300_000, killed_at
            with s.importer():
                final, seen = await until_done(gw, import_id, s.store_url)
        finally:
            await jobs.close()
        registry = gw.registry
    assert final["import_status"] == "COMPLETE", final
    assert final["counts"] == {"total": 300_000, "imported": 300_000, "failed": 0}
    assert seen == sorted(seen)
    rows_url = f"sqlite:///{tmp_path / 'rows.db'}"
    async with running_sink(kafka_bootstrap, registry, rows_url, batch_size=5000):
        rows = await wait_for_rows(rows_url, 300_000, timeout_s=180)
        await asyncio.sleep(2)  # anything published twice would arrive by now
        rows = await wait_for_rows(rows_url, 300_000, timeout_s=1)
    assert len(rows) == 300_000
    assert len({r["event_id"] for r in rows}) == 300_000


async def test_an_upload_over_the_limit_is_refused_and_may_be_tried_again(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, [TopicSpec(s.jobs_topic, 3)])
    async with running_gateway(
        kafka_bootstrap, [], tmp_path, principals=PRINCIPALS, types=s.types, jobs_topic=s.jobs_topic,
        upload_signing_key=KEY, store_url=s.store_url, max_upload_bytes=len(REFERENCE) - 1,
    ) as gw:  # fmt: skip
        import_id, path = await new_import(gw)
        code, body = await upload(gw, path, REFERENCE)
        assert code == 413, body
        assert (await status(gw, import_id))[1]["import_status"] == "WAITING_FOR_UPLOAD"
        assert list((tmp_path / "uploads").glob("*")) == []
        code, body = await upload(gw, path, REFERENCE[: len(REFERENCE) // 2])
        assert code == 200, body


async def test_a_full_disk_refuses_the_upload_with_507_and_keeps_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    setup = Setup(kafka_bootstrap, tmp_path)
    async with setup.gateway() as gw:
        import_id, path = await new_import(gw)
        uploads = tmp_path / "uploads"
        uploads.mkdir(exist_ok=True)
        # The upload's partial file is where the kernel answers every write "no space left" (ENOSPC).
        partial = uploads / f".{import_id}.{os.getpid()}.partial"
        partial.symlink_to("/dev/full")
        async with gw.session.put(path, data=REFERENCE * 2000) as r:
            full = r.status, dict(r.headers), await r.json()
        after_full = await status(gw, import_id)
        left = sorted(p.name for p in uploads.iterdir())
        again = await upload(gw, path, REFERENCE)  # room again: the same URL works
    assert full[0] == 507, full
    assert full[1]["Retry-After"] == "30"
    assert full[2]["message"] == "The upload store is full: nothing was kept; retry later"
    assert after_full[1]["import_status"] == "WAITING_FOR_UPLOAD"
    assert left == []  # neither the partial file nor a blob
    assert again[0] == 200


async def test_a_job_store_outage_of_10_s_mid_import_is_503_then_resumed_with_nothing_lost_or_doubled(
    kafka_bootstrap: str, tmp_path: Path, postgres_server: LocalPostgres | str, postgres_url: str
) -> None:
    if isinstance(postgres_server, str):
        pytest.skip("PG_TEST_URL points at an external server, which this test cannot stop and start")
    s = Setup(kafka_bootstrap, tmp_path, store_url=postgres_url)
    data, _ = _big_file(200_000, 10**9)
    async with s.gateway() as gw:
        import_id, path = await new_import(gw)
        assert (await upload(gw, path, data))[0] == 200
        with s.importer():
            deadline = time.monotonic() + 120
            while (before := (await status(gw, import_id))[1])["counts"]["imported"] == 0:
                assert time.monotonic() < deadline, "the import never started"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(postgres_server.stop)
            assert before["import_status"] not in ("COMPLETE", "FAILED")  # the outage lands mid-import
            during: list[tuple[int, str | None]] = []
            outage_ends = time.monotonic() + 10
            while time.monotonic() < outage_ends:
                async with gw.session.get(f"/v1/import/{import_id}", headers=AUTH) as r:
                    during.append((r.status, r.headers.get("Retry-After")))
                await asyncio.sleep(0.5)
            await asyncio.to_thread(postgres_server.start)
            final, _ = await until_done(gw, import_id, s.store_url, timeout_s=180)
        registry = gw.registry
    assert during
    assert {status for status, _ in during} == {503}  # never a 500
    assert all(after is not None for _, after in during)
    assert final["import_status"] == "COMPLETE", final
    assert final["counts"] == {"total": 200_000, "imported": 200_000, "failed": 0}
    rows_url = f"sqlite:///{tmp_path / 'rows.db'}"
    async with running_sink(kafka_bootstrap, registry, rows_url, batch_size=5000):
        rows = await wait_for_rows(rows_url, 200_000, timeout_s=180)
        await asyncio.sleep(2)  # anything published twice would arrive by now
        rows = await wait_for_rows(rows_url, 200_000, timeout_s=1)
    assert len(rows) == 200_000
    assert len({r["event_id"] for r in rows}) == 200_000
