"""Middlewares: metrics for every request, and one place that renders every error in the envelope."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.errors import ApiError, MethodNotAllowed, PayloadTooLarge, RouteNotFound
from gateway.metrics import GatewayMetrics
from gateway.responses import API_ID, error_body

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Request-scoped: the request's msgid, echoed in error responses.
MSGID_KEY = web.RequestKey("ingest.msgid", str)


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def error_response(error: ApiError, msgid: str | None) -> web.Response:
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s is not None else None
    return web.Response(
        status=error.status, body=error_body(error, msgid, API_ID), content_type="application/json",
        headers=headers,
    )  # fmt: skip


def _from_http(exc: web.HTTPException) -> ApiError | None:
    if exc.status == 404:
        return RouteNotFound()
    if exc.status == 405:
        return MethodNotAllowed()
    if exc.status == 413:
        return PayloadTooLarge()
    return None


def make_middlewares(metrics: GatewayMetrics) -> list[Middleware]:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        else:
            status = response.status
            return response
        finally:
            metrics.observe_request(route_label(request), request.method, status, time.perf_counter() - start)

    @web.middleware
    async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(error, request.get(MSGID_KEY))
        except web.HTTPException as exc:
            mapped = _from_http(exc)
            if mapped is None:
                raise
            return error_response(mapped, request.get(MSGID_KEY))
        except Exception:
            # Logged once here, answered generically: internals never reach the client.
            log.exception("unhandled error on %s %s", request.method, route_label(request))
            return error_response(ApiError(), request.get(MSGID_KEY))

    return [observe, render_errors]
