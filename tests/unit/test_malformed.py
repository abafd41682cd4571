"""Which of aiohttp.server's log records are client protocol errors, counted and dropped."""

from __future__ import annotations

import contextlib
import logging
import sys

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, HttpProcessingError, LineTooLong

from ingest_core.malformed import MalformedRequests, watch_malformed


def record(exc: BaseException | None, level: int = logging.ERROR) -> logging.LogRecord:
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        "aiohttp.server",
        level,
        __file__,
        1,
        "Error handling request from %s",
        ("10.0.0.1",),
        exc_info,
    )


def test_client_protocol_errors_are_counted_and_dropped_the_rest_pass() -> None:
    seen: list[None] = []
    malformed = MalformedRequests(lambda: seen.append(None))
    assert not malformed.filter(record(BadHttpMessage("Invalid header token")))
    assert not malformed.filter(record(LineTooLong("header", "8190", "9000")))
    assert len(seen) == 2
    # aiohttp's own failures, and anything that is not a client's 4xx, are still logged.
    assert malformed.filter(record(RuntimeError("a bug in aiohttp")))
    assert malformed.filter(record(HttpProcessingError(code=500, message="server side")))
    assert malformed.filter(record(None))
    assert len(seen) == 2


def test_non_http_first_bytes_logged_at_debug_are_counted_and_other_debug_records_kept_out() -> None:
    # aiohttp logs a connection whose first bytes are not HTTP (TLS to the plain port) at DEBUG.
    seen: list[None] = []
    malformed = MalformedRequests(lambda: seen.append(None), passes=logging.INFO)
    assert not malformed.filter(record(BadHttpMethod("\\x16\\x03\\x01"), logging.DEBUG))
    assert len(seen) == 1
    # Other records below the level the logger had before: dropped, as that level would have.
    assert not malformed.filter(record(None, logging.DEBUG))
    assert not malformed.filter(record(RuntimeError("debug detail"), logging.DEBUG))
    assert malformed.filter(record(None, logging.INFO))
    assert malformed.filter(record(RuntimeError("a bug in aiohttp")))
    assert len(seen) == 1


async def test_the_server_logger_makes_debug_records_only_while_the_app_runs() -> None:
    server_log = logging.getLogger("aiohttp.server")
    server_log.setLevel(logging.WARNING)
    try:
        ctx = watch_malformed(lambda: None)(web.Application())
        await ctx.__anext__()
        assert server_log.isEnabledFor(logging.DEBUG)
        assert len(server_log.filters) == 1
        with contextlib.suppress(StopAsyncIteration):
            await ctx.__anext__()
        assert server_log.level == logging.WARNING
        assert server_log.filters == []
    finally:
        server_log.setLevel(logging.NOTSET)
