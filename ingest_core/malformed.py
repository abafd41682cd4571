"""Requests aiohttp cannot parse (a bad request line, header or chunk): counted, and logged as one
line at DEBUG instead of aiohttp's ERROR with a traceback.

aiohttp answers them itself, in plain text before any route runs, and logs each one through
``aiohttp.server`` at ERROR with the parser's traceback: one misbehaving client or a port scanner
could fill the logs and set off alerts meant for the program's own failures. They are the client's
doing, so they are counted instead (the gateway's ``gateway_malformed_requests_total``, the sink's
``sink_http_malformed_requests_total``). Every other record of that logger (a failure of aiohttp's
own) passes through unchanged. Used by every program that serves HTTP.

A connection whose first bytes are not HTTP at all (TLS sent to the plain port, a scanner's probe)
aiohttp logs at DEBUG, not ERROR: below the programs' usual level, so no record of it was ever made
and it went uncounted. While the app runs, ``aiohttp.server`` is therefore set to DEBUG, and the
filter lets through only the records the logger's own level would have let through before.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)


class MalformedRequests(logging.Filter):
    """Drops ``aiohttp.server``'s records of client protocol errors (4xx), after ``on_malformed()``."""

    def __init__(self, on_malformed: Callable[[], None], passes: int = logging.NOTSET) -> None:
        """``passes``: the least level of the other records let through."""
        super().__init__()
        self._on_malformed = on_malformed
        self._passes = passes

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or not 400 <= exc.code < 500:
            return record.levelno >= self._passes
        self._on_malformed()
        if log.isEnabledFor(logging.DEBUG):
            reason = exc.message.splitlines()[0] if exc.message else type(exc).__name__
            log.debug("%s: %d %s", record.getMessage(), exc.code, reason)
        return False


def watch_malformed(on_malformed: Callable[[], None]) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` that keeps the filter on ``aiohttp.server``'s logger while the app runs."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        server_log = logging.getLogger("aiohttp.server")
        level = server_log.level
        malformed = MalformedRequests(on_malformed, passes=server_log.getEffectiveLevel())
        server_log.addFilter(malformed)
        # Records at DEBUG are made from now on (see the module docstring). aiohttp makes them only
        # for errors, or for everything in asyncio's debug mode: none on the hot path.
        server_log.setLevel(logging.DEBUG)
        yield
        server_log.setLevel(level)
        server_log.removeFilter(malformed)

    return ctx
