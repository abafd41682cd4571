"""Import operations: ``POST /api/v1/import.new``, ``import.addUsers``, ``import.run``,
``GET /api/v1/import.status`` and ``getCurrentImportOperation`` (the states: ``ingest_core.operations``).

``X-User-Id`` + ``X-Auth-Token`` of a principal with ``run-import``. 401 and 403 answer the
reference's bodies exactly; every other error is ``{"success": false, "error": "..."}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from aiohttp import web

from gateway.body import check_json_media
from gateway.context import CONTEXT
from gateway.errors import http_form
from gateway.handling import Routes, error_headers
from gateway.routes.jsonl_import import UPLOADS, jobs_call
from ingest_core.auth import Principal
from ingest_core.errors import Forbidden, IngestError, InvalidInput, Unauthorized
from ingest_core.jobs import OPERATION_KIND, Job, now
from ingest_core.operations import (
    CANCELLED,
    FINISHED,
    IMPORTING,
    NEW,
    READY,
    USER_TYPE,
    WrongState,
    check_users,
    counts,
    new_operation_id,
    operation_view,
    state,
)
from ingest_core.record import OutRecord

log = logging.getLogger(__name__)

PERMISSION = "run-import"
# The reference's bodies, as it prints them (json.dumps's separators: ", " and ": ").
UNAUTHORIZED_BODY = json.dumps({"status": "error", "message": "You must be logged in to do this."}).encode()
FORBIDDEN_BODY = json.dumps(
    {
        "success": False,
        "error": "User does not have the permissions required for this action [error-unauthorized]",
    }
).encode()


def operation_error_response(
    error: IngestError, _msgid: str | None, headers: dict[str, str] | None = None
) -> web.Response:
    if isinstance(error, Unauthorized):
        body = UNAUTHORIZED_BODY
    elif isinstance(error, Forbidden):
        body = FORBIDDEN_BODY
    else:
        body = orjson.dumps({"success": False, "error": error.message})
    return web.Response(
        status=http_form(type(error)).status, body=body, content_type="application/json",
        headers=error_headers(error, headers),
    )  # fmt: skip


def _ok(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _caller(request: web.Request) -> Principal:
    ctx = request.app[CONTEXT]
    principal = ctx.principals.authenticate_user(
        request.headers.get("X-User-Id"), request.headers.get("X-Auth-Token")
    )
    if principal is None:
        ctx.access.unauthenticated(ctx, request)
        raise Unauthorized()
    if not principal.may(PERMISSION, USER_TYPE):
        raise Forbidden()
    ctx.access.take_request(principal)
    return principal


async def _current(request: web.Request, principal: Principal) -> Job | None:
    job: Job | None = await jobs_call(request.app[CONTEXT].jobs().latest(OPERATION_KIND, principal.id))
    return job


async def new_operation(request: web.Request) -> web.Response:
    principal = _caller(request)
    jobs = request.app[CONTEXT].jobs()
    current = await _current(request, principal)
    if current is not None:
        if current.status not in FINISHED:
            await jobs_call(jobs.update_if(current.id, current.status, status=CANCELLED, ended_at=now()))
        await jobs_call(jobs.update(current.id, request={**current.request, "users": []}))
    operation = Job(
        id=new_operation_id(), kind=OPERATION_KIND, status=NEW, principal=principal.id, target=USER_TYPE,
        request={"users": []},
    )  # fmt: skip
    await jobs_call(jobs.create(operation))
    return _ok({"operation": operation_view(operation), "success": True})


async def add_users(request: web.Request) -> web.Response:
    principal = _caller(request)
    check_json_media(request)
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise InvalidInput("The body is not valid JSON") from None
    current = await _current(request, principal)
    if current is None or current.status not in (NEW, READY):
        raise WrongState(
            f"The current import operation is {state(current)}: users are added to a new or ready one"
            " (call import.new to start one)"
        )
    staged: list[dict[str, Any]] = current.request.get("users", [])
    users = check_users(doc, len(staged))
    changed = await jobs_call(
        request.app[CONTEXT]
        .jobs()
        .update_if(
            current.id, current.status, status=READY, request={**current.request, "users": staged + users}
        )
    )
    if not changed:
        raise WrongState("The current import operation changed meanwhile: read import.status and try again")
    return _ok({"success": True})


async def run(request: web.Request) -> web.Response:
    principal = _caller(request)
    ctx, uploads = request.app[CONTEXT], request.app[UPLOADS]
    if USER_TYPE not in ctx.registry.types:
        raise IngestError(f"The registry has no type {USER_TYPE!r} to publish users to")
    current = await _current(request, principal)
    if current is None or current.status != READY:
        raise WrongState(
            f"The current import operation is {state(current)}: run needs a ready one (users staged with"
            " import.addUsers)"
        )
    if not await jobs_call(ctx.jobs().update_if(current.id, READY, status=IMPORTING, started_at=now())):
        raise WrongState("The current import operation changed meanwhile: read import.status and try again")
    command = orjson.dumps({"job_id": current.id, "kind": OPERATION_KIND})
    try:
        await ctx.publisher().publish(uploads.jobs_topic, [OutRecord(current.id.encode(), command, [])])
    except BaseException:
        # Not queued: the operation is ready again, for run to be called again.
        try:
            await ctx.jobs().update_if(current.id, IMPORTING, status=READY, started_at=None)
        except Exception:
            log.exception("operation %s: could not be made ready again after its run failed", current.id)
        raise
    return _ok({"success": True})


async def import_status(request: web.Request) -> web.Response:
    current = await _current(request, _caller(request))
    return _ok({"success": True, "status": state(current), "count": counts(current)})


async def current_operation(request: web.Request) -> web.Response:
    current = await _current(request, _caller(request))
    return _ok({"success": True, "operation": None if current is None else operation_view(current)})


def add_routes(routes: Routes) -> None:
    render = operation_error_response
    routes.add("/api/v1/import.new", ["POST"], new_operation, render=render)
    routes.add("/api/v1/import.addUsers", ["POST"], add_users, render=render)
    routes.add("/api/v1/import.run", ["POST"], run, render=render)
    routes.add("/api/v1/import.status", ["GET"], import_status, render=render)
    routes.add("/api/v1/getCurrentImportOperation", ["GET"], current_operation, render=render)
