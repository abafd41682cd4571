"""Which of aiohttp.server's log records are client protocol errors, counted and dropped."""

from __future__ import annotations

import logging
import sys

from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

from ingest_core.malformed import MalformedRequests


def record(exc: BaseException | None) -> logging.LogRecord:
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
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
