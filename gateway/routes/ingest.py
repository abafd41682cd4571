"""``POST /v2/data/in/{dataset_id}``: parse, validate, publish, answer. Thin by design."""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway.context import CONTEXT
from gateway.errors import InvalidInput, Overloaded, PayloadTooLarge
from gateway.handling import MSGID_KEY, Routes
from gateway.ingest import msgid_of
from gateway.responses import success_body


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body exceeds {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Request body exceeds {limit} bytes") from None


async def ingest(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if ctx.inflight >= ctx.max_inflight:
        raise Overloaded()
    ctx.inflight += 1
    try:
        body = await _read_body(request, ctx.max_body_bytes)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidInput("Request body is not valid JSON") from None
        msgid = msgid_of(doc)
        if msgid is not None:
            request[MSGID_KEY] = msgid
        prepared = ctx.ingestor.prepare(request.match_info["dataset_id"], doc)
        try:
            await ctx.publisher().publish(prepared.topic, prepared.records)
        except Exception:
            ctx.metrics.observe_events(prepared.dataset, "failed", len(prepared.records))
            raise
        ctx.metrics.observe_events(prepared.dataset, "accepted", len(prepared.records))
        ctx.metrics.batch_size.observe(len(prepared.records))
        return web.Response(body=success_body(msgid), content_type="application/json")
    finally:
        ctx.inflight -= 1


def add_routes(routes: Routes) -> None:
    routes.add("/v2/data/in/{dataset_id}", ["POST"], ingest)
