"""The import worker's decisions that need no I/O: a command for an import that is not queued (its
upload undone) or already finished changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.importer.jsonl_job import JsonlJob
from consumers.importer.metrics import ImporterMetrics
from ingest_core.jobs import Job


class _Untouched:
    """Fails the test on any use: nothing may be read, published or stored."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"used: {name}")


@pytest.mark.parametrize("status", ["WAITING_FOR_UPLOAD", "UPLOADING", "COMPLETE", "FAILED"])
async def test_a_command_for_an_import_not_queued_changes_nothing(status: str) -> None:
    untouched: Any = _Untouched()
    job = JsonlJob(untouched, untouched, untouched, untouched, False, ImporterMetrics())
    await job.run(Job(id="import_x", kind="jsonl-import", status=status, principal="p"))
