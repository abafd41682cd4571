"""The entity import's pure parts: the form's checks, the job as the reference shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.routes.entity_import import human_duration, job_view
from ingest_core.entity_import import EntityRequest, check_domain, check_form
from ingest_core.errors import InvalidInput
from ingest_core.jobs import Job, iso_ms
from ingest_core.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = load_registry(ROOT / "topics.yaml").entities["customers"]


def test_a_good_form_becomes_the_request_stored_in_the_job() -> None:
    fields = {
        "type": "XLSX",
        "mapping": '{"2": "email", "1": "name"}',
        "locale": "en-GB",
        "timezoneOffset": "-60",
    }
    accepted = check_form(CUSTOMERS, fields, True, "acme")
    assert accepted == EntityRequest("xlsx", {1: "name", 2: "email"}, "en-GB", -60, "acme")
    payload = accepted.payload("c.xlsx", 10)
    assert payload == {
        "fileName": "c.xlsx", "size": 10, "type": "xlsx", "mapping": {"1": "name", "2": "email"},
        "locale": "en-GB", "timezoneOffset": -60, "domain": "acme",
    }  # fmt: skip
    assert EntityRequest.from_payload(payload) == accepted


def test_every_problem_of_a_form_is_listed() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_form(CUSTOMERS, {"type": "pdf", "mapping": '{"x": "name", "2": 3}'}, False, "acme")
    assert [field for field, _ in caught.value.problems] == ["file", "type", "mapping.x", "mapping.2"]


@pytest.mark.parametrize("value", [None, "", "   ", "d" * 257])
def test_the_domain_header_is_required_and_bounded(value: str | None) -> None:
    with pytest.raises(InvalidInput):
        check_domain(value)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 seconds"), (1, "1 second"), (10.9, "10 seconds"), (60, "1 minute"), (150, "2 minutes"),
     (7200, "2 hours"), (86_400 * 3, "3 days")],
)  # fmt: skip
def test_durations_read_as_the_reference_writes_them(seconds: float, words: str) -> None:
    assert human_duration(seconds) == words


def test_a_job_as_the_reference_shows_it() -> None:
    start = datetime(2022, 1, 5, 16, 27, 16, 560_123, tzinfo=UTC)
    job = Job(
        id="132e4567-e89b-12d3-a456-426614174000", kind="entity-import", status="COMPLETED", principal="p",
        target="customers", progress=100, imported=3, failed=1, errors=[{"row": 4, "message": "bad"}],
        request={"payload": {"type": "csv"}, "user_agent": "curl"}, created_at=start, updated_at=start,
        started_at=start, ended_at=start + timedelta(seconds=10), heartbeat_at=start,
    )  # fmt: skip
    view = job_view(job)
    assert view == {
        "id": job.id, "entity": "customers", "duration": "10 seconds", "status": "COMPLETED", "type": "IMPORT",
        "progress": 100, "payload": {"type": "csv"},
        "output": {"importedCount": 3, "failedCount": 1, "errors": [{"row": 4, "message": "bad"}]},
        "jobEnd": "2022-01-05T16:27:26.560Z", "jobStart": "2022-01-05T16:27:16.560Z",
        "createdAt": "2022-01-05T16:27:16.560Z", "updatedAt": "2022-01-05T16:27:16.560Z",
        "lastHeartbeat": "2022-01-05T16:27:16.560Z",
    }  # fmt: skip
    assert iso_ms(None) is None
