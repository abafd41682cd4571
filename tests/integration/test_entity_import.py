"""Entity file imports end to end on real Kafka and a real store: the gateway takes a CSV or XLSX
file in a multipart form and queues a job, the import worker (``ingest-importer``, a real process)
runs it, the sink stores its rows; ``GET /api/v1/job/{id}`` follows the job."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
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
            {"id": "ent", "key_sha256": _key("k-ent"), "permissions": ["entity-import"], "scopes": ["customers"]},
            {"id": "other", "key_sha256": _key("k-other"), "permissions": ["entity-import"], "scopes": ["customers"]},
            {"id": "admin", "key_sha256": _key("k-admin"), "permissions": ["entity-import"]},
            {"id": "elsewhere", "key_sha256": _key("k-elsewhere"), "permissions": ["entity-import"], "scopes": ["x"]},
            {"id": "jsonl", "key_sha256": _key("k-jsonl"), "permissions": ["import"]},
        ]
    },
    Path("auth.yaml"),
)  # fmt: skip
AUTH = {"Authorization": "Bearer k-ent", "domain": "acme.example"}
MAPPING = {
    "1": "name",
    "2": "email",
    "3": "age",
    "4": "balance",
    "5": "active",
    "6": "birthday",
    "7": "signed_up",
}
HEADER = ["name", "email", "age", "balance", "active", "birthday", "signed_up"]
# One bad row of each kind, with words its reason holds.
BAD_KINDS = [
    (["", "x@example.com", "3", "1.5", "true", "2024-01-02", "2024-01-02 10:00"], "required property 'name'"),
    (["Bad Age", "", "abc", "1", "yes", "", ""], "age"),
    (["Minus", "", "-4", "1", "no", "", ""], "minimum"),
    (["Bad Day", "", "4", "1", "no", "2024-13-45", ""], "not a date"),
    (["Bad Flag", "", "4", "1", "maybe", "", ""], "not true or false"),
]


class Setup:
    def __init__(
        self, bootstrap: str, tmp_path: Path, store_url: str | None = None, blob_store_url: str | None = None
    ) -> None:
        self.bootstrap, self.tmp, self.blob_store_url = bootstrap, tmp_path, blob_store_url
        self.jobs_topic = unique("jobs")
        self.topic = unique("entity.customers")
        self.entities = [
            {"id": "customers", "topic": self.topic, "schema": str(ROOT / "schemas/entities/customers.json")}
        ]
        self.store_url = store_url or f"sqlite:///{tmp_path / 'jobs.db'}"

    @asynccontextmanager
    async def gateway(self, **overrides: Any) -> AsyncIterator[GatewayHandle]:
        await asyncio.to_thread(ensure_topics, self.bootstrap, [TopicSpec(self.jobs_topic, 3)])
        async with running_gateway(
            self.bootstrap, [], self.tmp, principals=PRINCIPALS, entities=self.entities,
            jobs_topic=self.jobs_topic, store_url=self.store_url, blob_store_url=self.blob_store_url, **overrides,
        ) as gw:  # fmt: skip
            yield gw

    @contextmanager
    def importer(self) -> Iterator[subprocess.Popen[bytes]]:
        with importer_process(
            self.bootstrap, self.tmp, self.store_url, self.jobs_topic, free_port_pair(), self.blob_store_url
        ) as p:
            yield p


def form(data: bytes | None, fields: dict[str, str], file_name: str = "customers.csv") -> aiohttp.FormData:
    out = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        out.add_field(name, value)
    if data is not None:
        out.add_field("file", io.BytesIO(data), filename=file_name, content_type="application/octet-stream")
    return out


async def post_file(
    gw: GatewayHandle, data: bytes | None, fields: dict[str, str] | None = None, headers: dict[str, str] = AUTH,
    entity: str = "customers", version: str = "v1",
) -> tuple[int, Any]:  # fmt: skip
    fields = {"type": "csv", "mapping": json.dumps(MAPPING)} if fields is None else fields
    async with gw.session.post(
        f"/api/{version}/entities/{entity}/import", data=form(data, fields), headers=headers
    ) as r:
        return r.status, await r.json()


async def get_job(gw: GatewayHandle, job_id: str, secret: str = "k-ent") -> tuple[int, Any]:
    async with gw.session.get(f"/api/v1/job/{job_id}", headers={"Authorization": f"Bearer {secret}"}) as r:
        return r.status, await r.json()


async def queued(gw: GatewayHandle, data: bytes, **fields: str) -> str:
    code, body = await post_file(gw, data, {"type": "csv", "mapping": json.dumps(MAPPING), **fields})
    assert code == 200, body
    assert (body["status"], body["error"], body["message"], body["errors"]) == (
        200,
        False,
        "Import job created",
        [],
    )
    job = body["data"]
    assert (job["status"], job["type"], job["entity"], job["progress"]) == (
        "QUEUED",
        "IMPORT",
        "customers",
        0,
    )
    assert job["jobStart"] is None
    assert job["lastHeartbeat"] is None
    return str(job["id"])


async def until_done(
    gw: GatewayHandle, job_id: str, timeout_s: float = 120
) -> tuple[dict[str, Any], list[int]]:
    """The finished job, and every progress seen on the way."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code, body = await get_job(gw, job_id)
        assert code == 200, body
        seen.append(body["data"]["progress"])
        if body["data"]["status"] in ("COMPLETED", "FAILED"):
            return body["data"], seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} not done in {timeout_s}s")


def table(rows: int, bad_every: int) -> tuple[list[list[str]], dict[int, str]]:
    """The header and ``rows`` data rows (row numbers 2..rows+1), every ``bad_every``-th bad."""
    out, bad = [HEADER], {}
    for i in range(1, rows + 1):
        number = i + 1
        if i % bad_every == 0:
            cells, reason = BAD_KINDS[(i // bad_every) % len(BAD_KINDS)]
            bad[number] = reason
            out.append(cells)
        else:
            day = dt.date(2000, 1, 1) + dt.timedelta(days=i % 9000)
            out.append([f"Customer {i}", f"c{i}@example.com", str(i % 90), f"{i}.25", "true" if i % 2 else "false",
                        day.isoformat(), f"{day.isoformat()} 12:30:00"])  # fmt: skip
    return out, bad


def as_csv(rows: list[list[str]], delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    import csv

    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode()


def as_xlsx(rows: list[list[str]]) -> bytes:
    """The rows as a workbook with typed cells, as a spreadsheet user would have typed them."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        typed: list[Any] = []
        for column, cell in enumerate(row, 1):
            if cell == "" or row is rows[0]:
                typed.append(cell or None)
            elif column == 3 and cell.lstrip("-").isdigit():
                typed.append(int(cell))
            elif column == 4:
                typed.append(float(cell))
            elif column == 5 and cell in ("true", "false"):
                typed.append(cell == "true")
            elif column == 6 and len(cell) == 10 and cell[4] == "-" and int(cell[5:7]) <= 12:
                typed.append(dt.datetime.fromisoformat(cell))
            elif column == 7:
                typed.append(dt.datetime.fromisoformat(cell))
            else:
                typed.append(cell)
        sheet.append(typed)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


async def persisted(bootstrap: str, gw_registry: Any, tmp_path: Path, count: int) -> list[dict[str, Any]]:
    rows_url = f"sqlite:///{tmp_path / unique('rows')}.db"
    async with running_sink(bootstrap, gw_registry, rows_url, batch_size=5000):
        await wait_for_rows(rows_url, count, timeout_s=120)
        await asyncio.sleep(1)  # anything published twice would arrive by now
        return await wait_for_rows(rows_url, count, timeout_s=1)


def _event(row: dict[str, Any]) -> dict[str, Any]:
    event = row["event"]
    return json.loads(event) if isinstance(event, str) else dict(event)


@pytest.mark.parametrize("file_type", ["csv", "xlsx"])
async def test_ten_thousand_rows_with_fifty_bad_ones(
    kafka_bootstrap: str, tmp_path: Path, store_url: str, file_type: str
) -> None:
    # The jobs on SQLite, then on PostgreSQL.
    await ten_thousand_rows(Setup(kafka_bootstrap, tmp_path, store_url), tmp_path, file_type)


async def test_ten_thousand_rows_with_the_file_in_s3(
    kafka_bootstrap: str, tmp_path: Path, s3_bucket: str
) -> None:
    await ten_thousand_rows(Setup(kafka_bootstrap, tmp_path, blob_store_url=s3_bucket), tmp_path, "csv")


async def ten_thousand_rows(s: Setup, tmp_path: Path, file_type: str) -> None:
    kafka_bootstrap = s.bootstrap
    rows, bad = table(10_000, 200)
    assert len(bad) == 50
    data = as_csv(rows) if file_type == "csv" else as_xlsx(rows)
    async with s.gateway() as gw:
        job_id = await queued(gw, data, type=file_type)
        with s.importer():
            job, seen = await until_done(gw, job_id)
        registry = gw.registry
    assert job["status"] == "COMPLETED", job
    assert (job["output"]["importedCount"], job["output"]["failedCount"]) == (9_950, 50)
    assert {e["row"] for e in job["output"]["errors"]} == set(bad)
    for error in job["output"]["errors"]:
        assert bad[error["row"]] in error["message"], error
    assert seen == sorted(seen)
    assert seen[-1] == 100
    assert job["payload"] == {
        "fileName": "customers.csv", "size": len(data), "type": file_type, "mapping": MAPPING, "locale": "en-US",
        "timezoneOffset": 0, "domain": "acme.example",
    }  # fmt: skip
    for name in ("jobStart", "jobEnd", "createdAt", "updatedAt", "lastHeartbeat"):
        assert dt.datetime.strptime(job[name], "%Y-%m-%dT%H:%M:%S.%f%z"), name
    assert job["duration"].split()[1] in ("second", "seconds", "minute", "minutes")
    stored = await persisted(kafka_bootstrap, registry, tmp_path, 9_950)
    assert len(stored) == 9_950
    assert {r["event_id"] for r in stored} == {f"{job_id}:{n}" for n in range(2, 10_002) if n not in bad}
    assert {r["topic"] for r in stored} == {s.topic}
    assert {r["dataset"] for r in stored} == {"customers"}
    first = next(_event(r) for r in stored if r["event_id"] == f"{job_id}:2")
    assert first == {
        "name": "Customer 1", "email": "c1@example.com", "age": 1, "balance": 1.25, "active": True,
        "birthday": "2000-01-02", "signed_up": "2000-01-02T12:30:00Z", "domain": "acme.example",
    }  # fmt: skip


async def test_bom_semicolons_quoted_newlines_locales_offsets_and_formulas(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    semicolons = b"\xef\xbb\xbf" + as_csv(
        [HEADER,
         ["Ann\nSecond line", '=HYPERLINK("http://x")', "7", "1.234,5", "true", "31.12.2024", "31.12.2024 23:30"],
         ["Carl", "", "7", "1", "ja", "", ""],
         ["@SUM(A1)", "+1", "8", "-2,5", "false", "01/02/2024", "2024-02-01T00:00:00+02:00"]],
        delimiter=";",
    )  # fmt: skip
    us = as_csv([["Bob", "-1+2", "9", "1,234.5", "1", "12/31/2024", "12/31/2024 23:30"]])
    en_gb = as_csv([["Dora", "", "10", "1,234.5", "0", "31/12/2024", "31/12/2024 23:30"]])
    async with s.gateway() as gw:
        gb_job = await queued(gw, semicolons, locale="de-DE", timezoneOffset="60")
        us_job = await queued(gw, us, locale="en-US", timezoneOffset="-300")
        en_gb_job = await queued(gw, en_gb, locale="en-GB")
        with s.importer():
            gb, _ = await until_done(gw, gb_job)
            done_us, _ = await until_done(gw, us_job)
            done_gb, _ = await until_done(gw, en_gb_job)
        registry = gw.registry
    assert (gb["status"], gb["output"]["importedCount"], gb["output"]["failedCount"]) == (
        "COMPLETED",
        2,
        1,
    ), gb
    # Row 3 as a spreadsheet shows it: the quoted newline is inside row 2.
    assert gb["output"]["errors"] == [{"row": 3, "message": "column 5 (active): 'ja' is not true or false"}]
    assert done_us["status"] == "COMPLETED", done_us
    assert done_gb["status"] == "COMPLETED", done_gb
    events = {r["event_id"]: _event(r) for r in await persisted(kafka_bootstrap, registry, tmp_path, 4)}
    assert events[f"{gb_job}:2"] == {
        "name": "Ann\nSecond line", "email": '=HYPERLINK("http://x")', "age": 7, "balance": 1234.5, "active": True,
        "birthday": "2024-12-31", "signed_up": "2024-12-31T22:30:00Z", "domain": "acme.example",
    }  # fmt: skip
    assert events[f"{gb_job}:4"] == {
        "name": "@SUM(A1)", "email": "+1", "age": 8, "balance": -2.5, "active": False, "birthday": "2024-02-01",
        "signed_up": "2024-01-31T22:00:00Z", "domain": "acme.example",
    }  # fmt: skip
    assert events[f"{en_gb_job}:1"] == {
        "name": "Dora", "age": 10, "balance": 1234.5, "active": False, "birthday": "2024-12-31",
        "signed_up": "2024-12-31T23:30:00Z", "domain": "acme.example",
    }  # fmt: skip
    assert events[f"{us_job}:1"] == {
        "name": "Bob", "email": "-1+2", "age": 9, "balance": 1234.5, "active": True, "birthday": "2024-12-31",
        "signed_up": "2025-01-01T04:30:00Z", "domain": "acme.example",
    }  # fmt: skip


def _fields(**changes: str | None) -> dict[str, str]:
    out = {"type": "csv", "mapping": json.dumps(MAPPING)}
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


@pytest.mark.parametrize(
    ("fields", "headers", "field", "words"),
    [
        (_fields(), {"Authorization": "Bearer k-ent"}, "domain", "is required"),
        (_fields(type="pdf"), AUTH, "type", "csv or xlsx"),
        (_fields(type=None), AUTH, "type", "is required"),
        (_fields(mapping="{1: name}"), AUTH, "mapping", "not valid JSON"),
        (_fields(mapping=None), AUTH, "mapping", "is required"),
        (_fields(mapping='["name"]'), AUTH, "mapping", "JSON object"),
        (_fields(mapping='{"0": "name"}'), AUTH, "mapping.0", "whole number from 1"),
        (_fields(mapping='{"a": "name"}'), AUTH, "mapping.a", "whole number from 1"),
        (
            _fields(mapping='{"1": "nickname"}'),
            AUTH,
            "mapping.1",
            "'nickname' is not a property of customers",
        ),
        (_fields(mapping='{"1": "name", "2": "name"}'), AUTH, "mapping", "more than one column"),
        (_fields(locale="not a locale!"), AUTH, "locale", "BCP 47"),
        (_fields(timezoneOffset="90.5"), AUTH, "timezoneOffset", "whole minutes"),
        (_fields(timezoneOffset="5000"), AUTH, "timezoneOffset", "whole minutes"),
    ],
)
async def test_each_bad_upload_is_a_400_in_the_envelope_naming_its_field(
    kafka_bootstrap: str,
    tmp_path: Path,
    fields: dict[str, str],
    headers: dict[str, str],
    field: str,
    words: str,
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    async with s.gateway() as gw:
        code, body = await post_file(gw, b"name\nAnn\n", fields, headers)
    assert code == 400, body
    assert (body["status"], body["error"], body["data"]) == (400, True, None)
    assert [e for e in body["errors"] if e["field"] == field and words in e["message"]], body
    assert list((tmp_path / "uploads").glob("*")) == []  # nothing of a refused upload is kept


async def test_missing_file_unknown_entity_version_job_and_credentials(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    async with s.gateway(max_upload_bytes=1000) as gw:
        code, body = await post_file(gw, None)
        assert (code, body["errors"]) == (400, [{"field": "file", "message": "is required"}]), body
        code, body = await post_file(
            gw, b"a\n", entity="suppliers", headers={**AUTH, "Authorization": "Bearer k-admin"}
        )
        assert (code, body["status"], body["error"]) == (404, 404, True), body
        assert "suppliers" in body["message"]
        code, body = await post_file(gw, b"a\n", version="v2")
        assert (code, body["status"]) == (404, 404), body
        code, body = await post_file(gw, b"x" * 1001)
        assert (code, body["status"]) == (413, 413), body
        assert list((tmp_path / "uploads").glob("*")) == []
        code, body = await post_file(gw, b"a\n", headers={"domain": "d"})
        assert (code, body["status"], body["error"]) == (401, 401, True), body
        code, body = await post_file(gw, b"a\n", headers={**AUTH, "Authorization": "Bearer k-elsewhere"})
        assert (code, body["status"]) == (403, 403), body
        code, body = await post_file(gw, b"a\n", headers={**AUTH, "Authorization": "Bearer k-jsonl"})
        assert code == 403, body
        async with gw.session.post(
            "/api/v1/entities/customers/import", json={"type": "csv"}, headers=AUTH
        ) as r:
            assert r.status == 415
        job_id = await queued(gw, b"name\nAnn\n")
        assert (await get_job(gw, job_id))[0] == 200
        assert (await get_job(gw, job_id, "k-admin"))[0] == 200  # an unscoped principal sees every job
        code, body = await get_job(gw, job_id, "k-other")  # another principal's job
        assert (code, body["status"], body["error"], body["data"]) == (404, 404, True, None), body
        code, body = await get_job(gw, "24a55348-e5c9-48b7-b377-07db2f1df368")
        assert (code, body["message"]) == (404, "No such job"), body
        async with gw.session.get(f"/api/v1/job/{job_id}") as r:
            assert r.status == 401
        async with gw.session.get(f"/api/v9/job/{job_id}", headers={"Authorization": "Bearer k-ent"}) as r:
            assert r.status == 404


async def test_a_worker_killed_mid_file_resumes_and_stores_each_row_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    rows, _ = table(200_000, 10**9)
    async with s.gateway() as gw:
        job_id = await queued(gw, as_csv(rows))
        jobs = open_job_store(s.store_url)
        try:
            with s.importer() as proc:
                deadline = time.monotonic() + 120
                while (job := await jobs.get(job_id)) is not None and job.checkpoint == 0:
                    assert time.monotonic() < deadline, "the job never started"
                    await asyncio.sleep(0.02)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            killed = await jobs.get(job_id)
            assert killed is not None
            assert killed.status == "RUNNING"
            assert 0 < killed.checkpoint < 200_001, killed.checkpoint
            with s.importer():
                job_view, seen = await until_done(gw, job_id, timeout_s=180)
        finally:
            await jobs.close()
        registry = gw.registry
    assert job_view["status"] == "COMPLETED", job_view
    assert (job_view["output"]["importedCount"], job_view["output"]["failedCount"]) == (200_000, 0)
    assert seen == sorted(seen)
    stored = await persisted(kafka_bootstrap, registry, tmp_path, 200_000)
    assert len(stored) == 200_000
    assert len({r["event_id"] for r in stored}) == 200_000


def with_parts(workbook: bytes, parts: dict[str, bytes]) -> bytes:
    """``workbook`` with more zip parts (a VBA project, an external link...)."""
    import zipfile

    buf = io.BytesIO(workbook)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as book:
        for name, data in parts.items():
            book.writestr(name, data)
    return buf.getvalue()


EVIL = "../../../tmp/evil.csv"  # a file name that would climb out of the upload directory


def zip_bomb() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/worksheets/sheet1.xml", b"<row>" + b" " * (256 * 1024 * 1024) + b"</row>")
    return buf.getvalue()


async def test_hostile_files_fail_their_job_or_are_read_safely_and_the_worker_lives_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    rows, _ = table(10, 1000)
    external = b'<externalLink><externalBook r:id="rId1"/></externalLink>'
    macros_and_links = with_parts(as_xlsx(rows), {
        "xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + b"\x00" * 512,
        "xl/externalLinks/externalLink1.xml": external,
        "xl/externalLinks/_rels/externalLink1.xml.rels": b'<Relationships><Relationship Id="rId1" '
        b'Target="file:///etc/passwd" TargetMode="External"/></Relationships>',
    })  # fmt: skip
    async with s.gateway() as gw:
        bomb = await queued(gw, zip_bomb(), type="xlsx")
        linked = await queued(gw, macros_and_links, type="xlsx")
        # A file name that would climb out of the upload directory, with control characters.
        fields = {"type": "csv", "mapping": json.dumps(MAPPING)}
        async with gw.session.post(
            "/api/v1/entities/customers/import", headers=AUTH, data=form(as_csv(rows), fields, file_name=EVIL)
        ) as r:
            traversal_status, traversal = r.status, await r.json()
        assert traversal_status == 200, traversal
        # Control characters in a part's headers: refused by the multipart parser, nothing kept.
        boundary = "b0undary"
        raw = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="evil\x01\x7f.csv"'
            f"\r\n\r\nname\r\n--{boundary}--\r\n"
        ).encode()
        async with gw.session.post(
            "/api/v1/entities/customers/import", data=raw,
            headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        ) as r:  # fmt: skip
            controlled = r.status, await r.json()
        beyond = await post_file(
            gw, as_csv(rows), {"type": "csv", "mapping": json.dumps({"100000": "email"})}
        )
        wide = await queued(gw, as_csv(rows[1:]), mapping=json.dumps({"1": "name", "16384": "email"}))
        with s.importer():
            bombed, _ = await until_done(gw, bomb)
            linked_job, _ = await until_done(gw, linked)
            named, _ = await until_done(gw, traversal["data"]["id"])
            wide_job, _ = await until_done(gw, wide)
        uploads = sorted(p.name for p in (tmp_path / "uploads").iterdir())
    assert bombed["status"] == "FAILED"
    assert [e for e in bombed["output"]["errors"] if "zip bomb" in e["message"]], bombed  # row 0: the file
    assert linked_job["status"] == "COMPLETED"  # the macros and the link are never opened
    assert linked_job["output"]["importedCount"] == 10
    assert named["status"] == "COMPLETED"
    assert controlled[0] == 400
    assert "headers are invalid" in controlled[1]["message"]
    assert named["payload"]["fileName"].endswith(
        "evil.csv"
    )  # kept as data (as the client encoded it), never a path
    assert not any(p.name.startswith("evil") for p in Path("/tmp").iterdir())  # noqa: ASYNC240
    assert all(name.replace("-", "").isalnum() for name in uploads), uploads  # blobs named by job id
    assert beyond[0] == 400
    assert beyond[1]["errors"][0]["field"] == "mapping.100000"  # beyond a spreadsheet's 16,384 columns
    assert wide_job["status"] == "COMPLETED"  # a column no row has: each row lacks it, no crash
    assert wide_job["output"]["importedCount"] == 10
