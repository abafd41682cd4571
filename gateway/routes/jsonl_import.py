"""JSONL imports: ``POST /v1/import`` makes an import and its signed upload URL,
``PUT /v1/import/{import_id}/upload?token=...`` streams the file to the blob store and queues the
import for the import workers, ``GET /v1/import/{import_id}`` reads its status.

``Authorization: Bearer <secret>`` with permission ``import`` (the upload is authorised by its
URL's token instead). Statuses as the reference names them: ``WAITING_FOR_UPLOAD``,
``IN_PROGRESS`` (queued or running), ``COMPLETE``, ``FAILED``. Errors are ``{"message", "errors"}``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import hdrs, web

from gateway.access import bearer
from gateway.context import CONTEXT, GatewayContext
from gateway.handling import Routes, message_error_response
from gateway.settings import GatewaySettings
from ingest_core.blobs import BlobStore
from ingest_core.errors import Conflict, ImportNotFound, PayloadTooLarge, StoreDown, UnsupportedMedia
from ingest_core.ids import new_import_id
from ingest_core.jobs import JSONL_KIND, Job
from ingest_core.record import OutRecord
from ingest_core.store import StoreUnavailable
from ingest_core.upload_token import sign, verify

log = logging.getLogger(__name__)

KIND = JSONL_KIND
PERMISSION = "import"
UPLOAD_CHUNK = 64 * 1024
# The statuses a client sees: the job's own, the transitional ones shown as the reference's.
PUBLIC_STATUS = {"UPLOADING": "WAITING_FOR_UPLOAD", "QUEUED": "IN_PROGRESS"}


@dataclass(frozen=True, slots=True)
class Uploads:
    blobs: BlobStore
    signing_key: bytes
    base_url: str
    max_bytes: int
    jobs_topic: str


UPLOADS = web.AppKey("gateway.uploads", Uploads)


async def jobs_call(coro: Any) -> Any:
    try:
        return await coro
    except StoreUnavailable as exc:
        log.warning("job store unavailable: %s", exc)
        raise StoreDown() from None


def status_body(job: Job) -> dict[str, Any]:
    return {
        "import_id": job.id,
        "import_status": PUBLIC_STATUS.get(job.status, job.status),
        "counts": {"total": job.total, "imported": job.imported, "failed": job.failed},
        "errors": job.errors,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


async def create_import(request: web.Request) -> web.Response:
    ctx, uploads = request.app[CONTEXT], request.app[UPLOADS]
    principal = ctx.access.authorize(ctx, request, bearer(request.headers), PERMISSION)
    import_id = new_import_id()
    job = Job(
        id=import_id, kind=KIND, status="WAITING_FOR_UPLOAD", principal=principal.id,
        request={"user_agent": request.headers.get(hdrs.USER_AGENT, "")[:256]},
    )  # fmt: skip
    await jobs_call(ctx.jobs().create(job))
    url = f"{uploads.base_url}/v1/import/{import_id}/upload?token={sign(uploads.signing_key, import_id)}"
    return web.json_response(
        {"import_id": import_id, "import_status": "WAITING_FOR_UPLOAD", "upload_url": url}
    )


async def _job_of(ctx: GatewayContext, request: web.Request) -> Job:
    """The request's import, when its caller may see it (its maker, or an unscoped principal)."""
    principal = ctx.access.authorize(ctx, request, bearer(request.headers), PERMISSION)
    job = await jobs_call(ctx.jobs().get(request.match_info["import_id"]))
    if job is None or job.kind != KIND or not (job.principal == principal.id or principal.unscoped):
        raise ImportNotFound()
    assert isinstance(job, Job)
    return job


async def import_status(request: web.Request) -> web.Response:
    return web.json_response(status_body(await _job_of(request.app[CONTEXT], request)))


async def upload(request: web.Request) -> web.Response:
    ctx, uploads = request.app[CONTEXT], request.app[UPLOADS]
    import_id = request.match_info["import_id"]
    verify(uploads.signing_key, request.query.get("token"), import_id)
    if request.headers.get(hdrs.CONTENT_ENCODING, "identity").lower() != "identity":
        raise UnsupportedMedia("Send the file as it is, without a Content-Encoding")
    if request.content_length is not None and request.content_length > uploads.max_bytes:
        raise PayloadTooLarge(f"The upload exceeds {uploads.max_bytes} bytes")
    if not await jobs_call(ctx.jobs().update_if(import_id, "WAITING_FOR_UPLOAD", status="UPLOADING")):
        if await jobs_call(ctx.jobs().get(import_id)) is None:
            raise ImportNotFound()
        raise Conflict()
    try:
        size = await uploads.blobs.put(
            import_id, request.content.iter_chunked(UPLOAD_CHUNK), uploads.max_bytes
        )
        made = await jobs_call(ctx.jobs().get(import_id))
        received = {
            **(made.request if made is not None else {}),
            "bytes": size, "content_type": request.headers.get(hdrs.CONTENT_TYPE, "")[:256],
        }  # fmt: skip
        await jobs_call(ctx.jobs().update(import_id, status="QUEUED", request=received))
        # The command is acknowledged by Kafka before the answer: a queued import is never forgotten.
        command = orjson.dumps({"job_id": import_id, "kind": KIND, "bytes": size})
        await ctx.publisher().publish(uploads.jobs_topic, [OutRecord(import_id.encode(), command, [])])
    except BaseException:
        # Nothing is queued: the client may upload again.
        await uploads.blobs.delete(import_id)
        for status in ("UPLOADING", "QUEUED"):
            try:
                await ctx.jobs().update_if(import_id, status, status="WAITING_FOR_UPLOAD")
            except StoreUnavailable:
                log.warning("import %s: its upload failed and the job store is unavailable", import_id)
        raise
    return web.json_response(
        {
            "import_id": import_id,
            "import_status": "IN_PROGRESS",
            "message": "Upload received: the import is queued",
        }
    )


def uploads_from(settings: GatewaySettings, blobs: BlobStore) -> Uploads:
    """The uploads' settings; a signing key made now where none is configured (see the README)."""
    key = settings.upload_signing_key
    if key is None:
        log.warning(
            "UPLOAD_SIGNING_KEY is not set: upload URLs are signed with a key made now, valid until exit"
        )
        key = secrets.token_urlsafe(32)
    base = settings.public_base_url or f"http://{settings.host}:{settings.port}"
    return Uploads(blobs, key.encode(), base.rstrip("/"), settings.max_upload_bytes, settings.jobs_topic)


def add_routes(routes: Routes) -> None:
    routes.add("/v1/import", ["POST"], create_import, render=message_error_response)
    routes.add("/v1/import/{import_id}", ["GET"], import_status, render=message_error_response)
    routes.add("/v1/import/{import_id}/upload", ["PUT"], upload, render=message_error_response)
