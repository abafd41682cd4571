"""``POST /api/v1/source/import``: a REST source's entries, each published to the source's topic and
acknowledged by Kafka before the answer, then stored as a complete job with its counts.

Errors are JSON objects ``{"message": ..., "errors": [{"path": ..., "message": ...}]}`` (``errors``
may be empty): 400 malformed, with every problem; 401 no or unknown ``X-API-KEY``; 403 a key
without ``source-import`` or without the source in its scope; 404 an unknown ``source_id``; 413
too large; 503 Kafka unavailable or the gateway at capacity, with ``Retry-After``.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from gateway.body import (
    check_json_media,
    content_coding,
    expect_continue,
    held_size,
    read_body,
    received_body,
)
from gateway.context import CONTEXT
from gateway.errors import Forbidden
from gateway.handling import Routes, message_error_response
from gateway.tracing import trace_records
from ingest_core.ids import new_import_id
from ingest_core.jobs import SOURCE_KIND, Job, now
from ingest_core.store import StoreUnavailable

log = logging.getLogger(__name__)

PATH = "/api/v1/source/import"
KIND = SOURCE_KIND
STARTED = "REST import started successfully"
PERMISSION = "source-import"


async def source_import(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    principal = ctx.access.authorize(ctx, request, request.headers.get("X-API-KEY"), PERMISSION)
    check_json_media(request)
    coding = content_coding(request)
    async with ctx.admission.hold(held_size(request, coding, ctx.max_body_bytes)) as held:
        body = received_body(request, coding, ctx.max_body_bytes)
        if body is None:
            body = await read_body(request, coding, ctx.max_body_bytes, ctx.body_timeout_s)
        held.resize(len(body))
        source_id, entries = ctx.source_importer.source_of(body)
        del body
        if not principal.may(PERMISSION, source_id):
            raise Forbidden(f"This key may not import into source {source_id[:128]!r}")
        import_id = new_import_id()
        prepared = ctx.source_importer.prepare(source_id, entries, import_id)
        del entries
        ctx.access.take_events(ctx.access.of(principal), len(prepared.records))
        trace_records(request, prepared.records)
        count = len(prepared.records)
        held.add_events(count)
        started = now()
        sending = ctx.publish(prepared)
        del prepared  # nothing of the request stays referenced while Kafka acknowledges
        await sending
    job = Job(
        id=import_id, kind=KIND, status="COMPLETE", principal=principal.id, target=source_id, progress=100,
        total=count, imported=count, checkpoint=count, created_at=started, started_at=started, ended_at=now(),
        request={"user_agent": request.headers.get(hdrs.USER_AGENT, "")[:256]},
    )  # fmt: skip
    try:
        await ctx.jobs().create(job)
    except StoreUnavailable as exc:
        # The entries are on Kafka: the client must not retry (a retry is a new import, stored again).
        log.error(  # noqa: TRY400 (an outage, not a bug: no traceback)
            "source import %s acknowledged by Kafka, but its job could not be stored: %s", import_id, exc
        )
    return web.json_response({"message": STARTED, "import_id": import_id})


def add_routes(routes: Routes) -> None:
    routes.add(PATH, ["POST"], source_import, expect=expect_continue, render=message_error_response)
