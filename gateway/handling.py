"""Every route's wrapper: one place that times each request for the metrics and renders every error
in the API's response envelope; plus the routes that answer unknown paths (404) and unsupported
methods (405) in that envelope.

Why a wrapper per route rather than aiohttp middlewares: with any middleware at all, aiohttp adds
its own middleware layer too, and the three coroutine layers cost about a fifth of a single-event
request's CPU (bench/NOTES.md, "route wrappers instead of middlewares"). The route
template is known when the route is added, so the label costs nothing either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import orjson
from aiohttp import hdrs, web

from gateway.errors import MethodNotAllowed, PayloadTooLarge, RouteNotFound, http_form
from gateway.metrics import GatewayMetrics
from gateway.responses import API_ID, error_body
from gateway.tracing import HEADER as TRACE_HEADER
from gateway.tracing import REQUEST_ID, request_id
from ingest_core.errors import IngestError, RateLimited

log = logging.getLogger(__name__)
# The 5xx answers logged without ACCESS_LOG: in an outage every request is one, so this logger is
# bounded like the Kafka clients' (ingest_core.log_repeats).
failure_log = logging.getLogger("gateway.handling.failures")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
# Request-scoped: the request's msgid, echoed in error responses.
MSGID_KEY = web.RequestKey("ingest.msgid", str)
UNMATCHED = "unmatched"  # the route label of requests to unknown paths
# On every answer: no content sniffing of an API's JSON as HTML, and no cache keeping an answer
# (a job's status, an upload URL) for another client.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


# How an API family answers an error: from the error, the request's msgid (if known) and headers.
Render = Callable[[IngestError, "str | None", "dict[str, str] | None"], web.Response]


def error_headers(error: IngestError, headers: dict[str, str] | None = None) -> dict[str, str] | None:
    """The headers an error's answer carries (``Retry-After``, ``Accept-Encoding``), with ``headers``."""
    form = http_form(type(error))
    if form.headers is not None:
        headers = {**(headers or {}), **form.headers}
    retry_after_s = error.retry_after_s if isinstance(error, RateLimited) else form.retry_after_s
    if retry_after_s is not None:
        headers = {**(headers or {}), "Retry-After": str(retry_after_s)}
    return headers


def error_response(
    error: IngestError, msgid: str | None, headers: dict[str, str] | None = None
) -> web.Response:
    """The ingestion API's answer to an error, in its envelope."""
    return web.Response(
        status=http_form(type(error)).status, body=error_body(error, msgid, API_ID),
        content_type="application/json", headers=error_headers(error, headers),
    )  # fmt: skip


def message_error_response(
    error: IngestError, _msgid: str | None, headers: dict[str, str] | None = None
) -> web.Response:
    """The import APIs' answer to an error: ``{"message": ..., "errors": [{"path", "message"}]}``."""
    body = {
        "message": error.message,
        "errors": [{"path": where, "message": what} for where, what in error.problems],
    }
    return web.Response(
        status=http_form(type(error)).status, body=orjson.dumps(body), content_type="application/json",
        headers=error_headers(error, headers),
    )  # fmt: skip


def _from_http(exc: web.HTTPException) -> IngestError | None:
    if exc.status == 404:
        return RouteNotFound()
    if exc.status == 405:
        return MethodNotAllowed()
    if exc.status == 413:
        return PayloadTooLarge()
    return None


def wrap(
    route: str, handler: Handler, metrics: GatewayMetrics, render: Render = error_response,
    access_log: bool = False,
) -> Handler:  # fmt: skip
    """``handler`` timed under the label ``route``, with every error rendered by ``render`` (the
    ingestion API's envelope unless the route's family has its own), its request id echoed, the
    security headers set, and a log line for it when ``access_log`` is on or it answered 500 or above."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        rid = request[REQUEST_ID] = request_id(request)
        try:
            response = await handler(request)
        except IngestError as error:
            response = render(error, request.get(MSGID_KEY, error.msgid), None)
        except web.HTTPException as exc:
            mapped = _from_http(exc)
            if mapped is None:
                metrics.observe_request(route, request.method, exc.status, time.perf_counter() - start)
                exc.headers[TRACE_HEADER] = rid
                exc.headers.update(SECURITY_HEADERS)
                raise
            response = render(mapped, request.get(MSGID_KEY), None)
        except Exception:
            # Logged once here, answered generically: internals never reach the client.
            log.exception("unhandled error on %s %s", request.method, route, extra={"request_id": rid})
            response = render(IngestError(), request.get(MSGID_KEY), None)
        headers = response.headers
        headers[TRACE_HEADER] = rid
        headers.update(SECURITY_HEADERS)
        elapsed = time.perf_counter() - start
        metrics.observe_request(route, request.method, response.status, elapsed)
        if access_log:
            _log_request(log, request, route, response.status, elapsed, rid)
        elif response.status >= 500:
            _log_request(failure_log, request, route, response.status, elapsed, rid)
        return response

    return wrapped


def _log_request(
    logger: logging.Logger, request: web.Request, route: str, status: int, elapsed_s: float, rid: str
) -> None:  # fmt: skip
    ms = round(elapsed_s * 1000, 3)
    fields = {
        "request_id": rid,
        "route": route,
        "method": request.method,
        "status": status,
        "duration_ms": ms,
    }
    level = logging.WARNING if status >= 500 else logging.INFO
    logger.log(level, "%s %s %d %.1f ms", request.method, route, status, ms, extra=fields)


class Routes:
    """Adds routes to an app, each wrapped, each path also answering 405 for other methods."""

    def __init__(self, app: web.Application, metrics: GatewayMetrics, access_log: bool = False) -> None:
        self._router = app.router
        self._metrics = metrics
        self._access_log = access_log

    def add(
        self, path: str, methods: Iterable[str], handler: Handler, expect: ExpectHandler | None = None,
        render: Render = error_response,
    ) -> None:  # fmt: skip
        """``expect``: the routes' answer to an ``Expect`` header (aiohttp's: ``100 Continue`` at once).
        ``render``: how the route's API family answers errors."""
        resource = self._router.add_resource(path)
        allowed = sorted(set(methods))
        for method in allowed:
            wrapped = wrap(path, handler, self._metrics, render, self._access_log)
            resource.add_route(method, wrapped, expect_handler=expect)
        allow_header = {"Allow": ", ".join(allowed)}

        async def not_allowed(request: web.Request) -> web.Response:
            return render(MethodNotAllowed(), None, allow_header)

        # Tried after the methods above: aiohttp matches a resource's routes in the order added.
        resource.add_route(
            hdrs.METH_ANY,
            wrap(path, not_allowed, self._metrics, render, self._access_log),
            expect_handler=expect,
        )

    def add_not_found(self) -> None:
        """Last: every path no route matched gets 404 in the envelope."""

        async def not_found(_request: web.Request) -> web.Response:
            raise RouteNotFound()

        self._router.add_route(
            hdrs.METH_ANY,
            "/{path:.*}",
            wrap(UNMATCHED, not_found, self._metrics, access_log=self._access_log),
        )
