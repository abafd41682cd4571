"""Entity file imports: ``POST /api/v1/entities/{entity}/import`` streams a CSV or XLSX file from its
multipart form to the blob store and queues a job for the import workers; ``GET /api/v1/job/{id}``
reads the job.

``Authorization: Bearer <secret>`` with permission ``entity-import`` (and the entity in scope for
an upload). Every answer is the reference's envelope ``{"status", "error", "message", "errors",
"data"}``: ``status`` the HTTP status, ``errors`` one ``{"field", "message"}`` per problem.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.access import bearer
from gateway.context import CONTEXT
from gateway.errors import RouteNotFound, http_form
from gateway.handling import Routes, error_headers
from gateway.routes.jsonl_import import UPLOAD_CHUNK, UPLOADS, jobs_call
from ingest_core.entity_import import check_domain, check_form
from ingest_core.errors import (
    EntityNotFound,
    ImportNotFound,
    IngestError,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMedia,
)
from ingest_core.jobs import ENTITY_KIND, Job, iso_ms, now
from ingest_core.record import OutRecord

log = logging.getLogger(__name__)

KIND = ENTITY_KIND
PERMISSION = "entity-import"
VERSION = "v1"
MAX_FIELD_BYTES = 64 * 1024  # a form field other than the file (the mapping is the largest)
MAX_PARTS = 32


def envelope(
    status: int, message: str, data: Any = None, errors: list[dict[str, str]] | None = None
) -> bytes:
    return orjson.dumps(
        {"status": status, "error": status >= 400, "message": message, "errors": errors or [], "data": data}
    )


def envelope_error_response(
    error: IngestError, _msgid: str | None, headers: dict[str, str] | None = None
) -> web.Response:
    """This family's answer to an error: the envelope with ``error: true``."""
    status = http_form(type(error)).status
    problems = [{"field": where, "message": what} for where, what in error.problems]
    return web.Response(
        status=status, body=envelope(status, error.message, errors=problems), content_type="application/json",
        headers=error_headers(error, headers),
    )  # fmt: skip


_UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))


def human_duration(seconds: float) -> str:
    """``"10 seconds"``, ``"1 minute"``, ``"2 hours"``: the largest whole unit, rounded down."""
    whole = max(0, int(seconds))
    for size, unit in _UNITS:
        if whole >= size or size == 1:
            count = whole // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")


def job_view(job: Job) -> dict[str, Any]:
    """A job as the reference shows it. ``duration``: from its start to its end (or to now while it
    runs); ``"0 seconds"`` before it starts."""
    if job.started_at is None:
        seconds = 0.0
    else:
        seconds = ((job.ended_at or now()) - job.started_at).total_seconds()
    return {
        "id": job.id, "entity": job.target, "duration": human_duration(seconds), "status": job.status,
        "type": "IMPORT", "progress": job.progress, "payload": job.request.get("payload", {}),
        "output": {"importedCount": job.imported, "failedCount": job.failed, "errors": job.errors},
        "jobEnd": iso_ms(job.ended_at), "jobStart": iso_ms(job.started_at),
        "createdAt": iso_ms(job.created_at), "updatedAt": iso_ms(job.updated_at),
        "lastHeartbeat": iso_ms(job.heartbeat_at),
    }  # fmt: skip


def _version(request: web.Request) -> None:
    if request.match_info["version"] != VERSION:
        raise RouteNotFound(
            f"No such API version: {request.match_info['version'][:16]!r} (this is {VERSION})"
        )


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(UPLOAD_CHUNK):
        yield chunk


async def _field(part: BodyPartReader, name: str) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(UPLOAD_CHUNK):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise InvalidInput(
                f"The {name} field is too large", problems=[(name, f"at most {MAX_FIELD_BYTES} bytes")]
            )
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InvalidInput(f"The {name} field is not UTF-8", problems=[(name, "is not UTF-8 text")]) from None


async def create_job(request: web.Request) -> web.Response:
    _version(request)
    ctx, uploads = request.app[CONTEXT], request.app[UPLOADS]
    entity_id = request.match_info["entity"]
    principal = ctx.access.authorize(ctx, request, bearer(request.headers), PERMISSION, entity_id)
    entity = ctx.registry.entities.get(entity_id)
    if entity is None:
        raise EntityNotFound(f"Unknown entity {entity_id[:128]!r}", problems=[("entity", "no such entity")])
    domain = check_domain(request.headers.get("domain"))
    if not request.content_type.startswith("multipart/form-data"):
        raise UnsupportedMedia("Send the file as multipart/form-data")
    if request.content_length is not None and request.content_length > uploads.max_bytes + MAX_FIELD_BYTES:
        raise PayloadTooLarge(f"The upload exceeds {uploads.max_bytes} bytes")
    job_id = str(uuid.uuid4())
    fields: dict[str, str] = {}
    file_name: str | None = None
    size = 0
    try:
        try:
            reader = await request.multipart()
            for _ in range(MAX_PARTS):
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or not part.name:
                    continue  # a nested multipart, or a part without a name: not one of the fields
                if part.name == "file":
                    if file_name is not None:
                        raise InvalidInput("Send one file", problems=[("file", "given more than once")])
                    file_name = (part.filename or "")[:256]
                    size = await uploads.blobs.put(job_id, _chunks(part), uploads.max_bytes)
                else:
                    fields[part.name] = await _field(part, part.name)
        except (ValueError, AssertionError) as exc:  # aiohttp's words for a malformed multipart body
            raise InvalidInput(f"The multipart body is malformed: {exc}"[:256]) from None
        except HttpProcessingError:  # a part's headers that do not parse (not echoed: they may be anything)
            raise InvalidInput("The multipart body is malformed: a part's headers are invalid") from None
        accepted = check_form(entity, fields, file_name is not None, domain)
        job = Job(
            id=job_id, kind=KIND, status="QUEUED", principal=principal.id, target=entity_id,
            request={
                "payload": accepted.payload(file_name or "", size),
                "user_agent": request.headers.get(hdrs.USER_AGENT, "")[:256],
            },
        )  # fmt: skip
        await jobs_call(ctx.jobs().create(job))
    except BaseException:
        await uploads.blobs.delete(job_id)
        raise
    await _queue(request, job)
    return web.Response(
        body=envelope(200, "Import job created", job_view(job)), content_type="application/json"
    )


async def _queue(request: web.Request, job: Job) -> None:
    """Publish the job's command, acknowledged by Kafka before the answer; a job that could not be
    queued is marked FAILED (the client sends the file again as a new job)."""
    ctx, uploads = request.app[CONTEXT], request.app[UPLOADS]
    command = orjson.dumps({"job_id": job.id, "kind": KIND})
    try:
        await ctx.publisher().publish(uploads.jobs_topic, [OutRecord(job.id.encode(), command, [])])
    except BaseException:
        await uploads.blobs.delete(job.id)
        with contextlib.suppress(Exception):
            await ctx.jobs().update_if(
                job.id, "QUEUED", status="FAILED", ended_at=now(),
                errors=[{"row": 0, "message": "the job could not be queued: send the file again"}],
            )  # fmt: skip
        raise


async def get_job(request: web.Request) -> web.Response:
    _version(request)
    ctx = request.app[CONTEXT]
    principal = ctx.access.authorize(ctx, request, bearer(request.headers), PERMISSION)
    job = await jobs_call(ctx.jobs().get(request.match_info["id"]))
    if job is None or job.kind != KIND or not (job.principal == principal.id or principal.unscoped):
        raise ImportNotFound("No such job", problems=[("id", "no such job")])
    return web.Response(body=envelope(200, "Job found", job_view(job)), content_type="application/json")


def add_routes(routes: Routes) -> None:
    routes.add(
        "/api/{version}/entities/{entity}/import", ["POST"], create_job, render=envelope_error_response
    )
    routes.add("/api/{version}/job/{id}", ["GET"], get_job, render=envelope_error_response)
