"""The job store on real SQLite and PostgreSQL: created, read back, updated with progress and the
checkpoint never going backwards, errors capped; its table comes with the store's migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest_core.jobs import MAX_ERRORS, Job, open_job_store
from ingest_core.store import open_store
from ingest_core.store.migrations import LATEST

pytestmark = pytest.mark.integration


async def test_a_job_is_stored_read_and_updated(store_url: str) -> None:
    jobs = open_job_store(store_url)
    try:
        await jobs.migrate()
        await jobs.migrate()  # idempotent
        job = Job(id="import_x", kind="jsonl-import", status="WAITING_FOR_UPLOAD", principal="dev",
                  request={"content_type": "application/jsonl"})  # fmt: skip
        await jobs.create(job)
        got = await jobs.get("import_x")
        assert got is not None
        assert (got.kind, got.status, got.principal, got.request, got.errors) == (
            "jsonl-import", "WAITING_FOR_UPLOAD", "dev", {"content_type": "application/jsonl"}, [],
        )  # fmt: skip
        assert got.created_at.tzinfo is not None
        started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        await jobs.update("import_x", status="IN_PROGRESS", progress=40, checkpoint=400, started_at=started)
        await jobs.update("import_x", progress=30, checkpoint=300, imported=300)  # a late, stale update
        errors = [{"line": i, "message": "bad"} for i in range(MAX_ERRORS + 5)]
        await jobs.update("import_x", errors=errors, failed=len(errors))
        got = await jobs.get("import_x")
        assert got is not None
        assert (got.status, got.progress, got.checkpoint, got.imported) == ("IN_PROGRESS", 40, 400, 300)
        assert got.started_at == started
        assert len(got.errors) == MAX_ERRORS
        assert got.failed == MAX_ERRORS + 5
        assert got.updated_at >= got.created_at
        assert await jobs.get("nope") is None
        with pytest.raises(ValueError, match="not updatable"):
            await jobs.update("import_x", kind="other")
    finally:
        await jobs.close()


async def test_the_sink_and_the_job_store_share_one_set_of_migrations(store_url: str) -> None:
    records = open_store(store_url)
    jobs = open_job_store(store_url)
    try:
        await jobs.migrate()
        assert await records.migrate() == LATEST  # each migration counted once
    finally:
        await jobs.close()
        await records.close()


async def test_latest_is_the_principals_last_job_of_its_kind(store_url: str) -> None:
    jobs = open_job_store(store_url)
    try:
        await jobs.migrate()
        assert await jobs.latest("import-operation", "p") is None
        start = datetime(2024, 1, 1, tzinfo=UTC)
        for i, (kind, principal) in enumerate(
            [
                ("import-operation", "p"),
                ("import-operation", "p"),
                ("entity-import", "p"),
                ("import-operation", "q"),
            ]
        ):
            at = start + timedelta(seconds=i)
            await jobs.create(
                Job(id=f"j{i}", kind=kind, status="x", principal=principal, created_at=at, updated_at=at)
            )
        got = await jobs.latest("import-operation", "p")
        assert got is not None
        assert got.id == "j1"
    finally:
        await jobs.close()


async def test_a_conditional_update_happens_once(store_url: str) -> None:
    jobs = open_job_store(store_url)
    try:
        await jobs.migrate()
        await jobs.create(Job(id="import_c", kind="jsonl-import", status="WAITING_FOR_UPLOAD", principal="p"))
        assert await jobs.update_if("import_c", "WAITING_FOR_UPLOAD", status="UPLOADING")
        assert not await jobs.update_if(
            "import_c", "WAITING_FOR_UPLOAD", status="UPLOADING"
        )  # a second upload
        assert not await jobs.update_if("nope", "WAITING_FOR_UPLOAD", status="UPLOADING")
        got = await jobs.get("import_c")
        assert got is not None
        assert got.status == "UPLOADING"
    finally:
        await jobs.close()
