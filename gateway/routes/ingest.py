"""``POST /v2/data/in/{dataset_id}``: check access and limits, admit, read the body, prepare the
records, take their events' tokens, publish, answer."""

from __future__ import annotations

from aiohttp import web

from gateway.body import (
    check_json_media,
    content_coding,
    expect_continue,
    held_size,
    read_body,
    received_body,
)
from gateway.context import CONTEXT
from gateway.handling import MSGID_KEY, Routes
from gateway.responses import success_body
from gateway.tracing import trace_records


async def ingest(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    dataset_id = request.match_info["dataset_id"]
    caller = ctx.access.data_in(ctx, request, dataset_id)
    check_json_media(request)
    coding = content_coding(request)
    async with ctx.admission.hold(held_size(request, coding, ctx.max_body_bytes)) as held:
        body = received_body(request, coding, ctx.max_body_bytes)
        if body is None:
            body = await read_body(request, coding, ctx.max_body_bytes, ctx.body_timeout_s)
        held.resize(len(body))
        prepared = ctx.ingestor.prepare_body(dataset_id, body)
        del body
        msgid = request[MSGID_KEY] = prepared.msgid
        ctx.access.take_events(caller, len(prepared.records))
        trace_records(request, prepared.records)
        held.add_events(len(prepared.records))
        sending = ctx.publish(prepared)
        del prepared  # nothing of the request stays referenced while Kafka acknowledges
        await sending
        return web.Response(body=success_body(msgid), content_type="application/json")


def add_routes(routes: Routes) -> None:
    routes.add("/v2/data/in/{dataset_id}", ["POST"], ingest, expect=expect_continue)
