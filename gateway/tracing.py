"""Request ids and trace context: every request's ``X-Request-ID`` (the client's when it is sane,
else one made here), echoed on its answer, written into its Kafka records' headers beside a W3C
``traceparent`` when the client sent one, and named in its log lines."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable

from aiohttp import web

from ingest_core.record import OutRecord

REQUEST_ID = web.RequestKey("ingest.request_id", str)
HEADER = "X-Request-ID"
# Kafka record headers (beside dataset, event_id and msgid).
KAFKA_REQUEST_ID = "request_id"
KAFKA_TRACEPARENT = "traceparent"
_SANE_ID = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII, at most 128 characters
# W3C Trace Context, version 00: version-trace id-parent id-flags, lower-case hex.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


# A made id: 16 random hex digits drawn once per process, then a counter (16 hex digits): unique
# across processes without a system call per request (os.urandom costs one).
_PROCESS_PREFIX = os.urandom(8).hex()
_counter = itertools.count(1)


def request_id(request: web.Request) -> str:
    """The client's ``X-Request-ID`` when it is sane, else a new one (32 hex digits)."""
    given = request.headers.get(HEADER)
    if given is not None and _SANE_ID.fullmatch(given):
        return given
    return f"{_PROCESS_PREFIX}{next(_counter):016x}"


def trace_records(request: web.Request, records: Iterable[OutRecord]) -> None:
    """Add the request's trace headers to each of its records' (each record has a list of its own)."""
    traced = record_headers(request)
    for record in records:
        record.headers.extend(traced)


def record_headers(request: web.Request) -> list[tuple[str, str | bytes | None]]:
    """The headers a request's Kafka records carry for tracing it."""
    out: list[tuple[str, str | bytes | None]] = [(KAFKA_REQUEST_ID, request[REQUEST_ID].encode())]
    parent = request.headers.get("traceparent")
    if parent is not None and _TRACEPARENT.fullmatch(parent) and not parent.startswith("ff"):
        out.append((KAFKA_TRACEPARENT, parent.encode()))
    return out
