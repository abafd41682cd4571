"""The response envelope of the ingestion API, built cheaply: it is on the hot path of every request.

``ts`` is the server's local time to the second with a numeric offset (``+00:00`` in UTC, never
``Z``), formatted once per second; ``resmsgid`` is a new UUID per response.

The success envelope is put together from bytes made once a second (everything up to the msgid)
and once for all (everything after the resmsgid), byte for byte what orjson makes of the whole
(tests/unit/test_responses.py): serialising the whole per response cost the server a few percent
of its single-event requests/s (bench/NOTES.md, "the success envelope").
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.errors import http_form
from ingest_core.errors import IngestError

API_ID = "api.data.in"
API_VER = "v2"
SUCCESS_RESULT = {"message": "Data ingested successfully"}
# What follows the resmsgid in every success envelope.
_SUCCESS_TAIL = b'"},"responseCode":"OK","result":' + orjson.dumps(SUCCESS_RESULT) + b"}"


class _SecondClock:
    """ISO 8601 local time to the second, and the success envelope's opening that holds it;
    recomputed only when the second changes."""

    __slots__ = ("_second", "_success_head", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""
        self._success_head = b""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._tick(second)
        return self._text

    def success_head(self) -> bytes:
        """``{"id":...,"ver":...,"ts":...,"params":{"status":"SUCCESS",``"""
        second = int(time.time())
        if second != self._second:
            self._tick(second)
        return self._success_head

    def _tick(self, second: int) -> None:
        self._text = text = datetime.fromtimestamp(second, tz=UTC).astimezone().isoformat()
        opening = {"id": API_ID, "ver": API_VER, "ts": text, "params": {"status": "SUCCESS"}}
        self._success_head = orjson.dumps(opening)[: -len(b"}}")] + b","
        self._second = second


_clock = _SecondClock()
_UUIDS_PER_DRAW = 256
_UUID_GROUPS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))  # of its 32 hex digits: 8-4-4-4-12


class _Uuid4s:
    """Random (version 4) UUIDs as ASCII text in bytes, made 256 at a time from one ``os.urandom``
    (``str(uuid.uuid4())`` makes a system call and an object per UUID): taking one is a
    list's ``pop()``. The ids are per process, and the gateway's workers are spawned, never
    forked, so no two share them."""

    __slots__ = ("_ready",)

    def __init__(self) -> None:
        self._ready: list[bytes] = []

    def next(self) -> bytes:
        ready = self._ready
        if not ready:
            raw = bytearray(os.urandom(16 * _UUIDS_PER_DRAW))
            raw[6::16] = bytes([b & 0x0F | 0x40 for b in raw[6::16]])  # version 4
            raw[8::16] = bytes([b & 0x3F | 0x80 for b in raw[8::16]])  # RFC 4122 variant
            h = raw.hex().encode()
            ready.extend(b"-".join([h[i + a : i + b] for a, b in _UUID_GROUPS]) for i in range(0, len(h), 32))
        return ready.pop()


_uuid4s = _Uuid4s()
_dumps = orjson.dumps


def _params(status: str, msgid: str | None) -> dict[str, str]:
    params = {"status": status}
    if msgid is not None:
        params["msgid"] = msgid
    params["resmsgid"] = _uuid4s.next().decode()
    return params


def success_body(msgid: str) -> bytes:
    return b'%b"msgid":%b,"resmsgid":"%b%b' % (
        _clock.success_head(),
        _dumps(msgid),
        _uuid4s.next(),
        _SUCCESS_TAIL,
    )


def error_body(error: IngestError, msgid: str | None, api_id: str = API_ID) -> bytes:
    body: dict[str, Any] = {
        "id": api_id,
        "ver": API_VER,
        "ts": _clock.now(),
        "params": _params("FAILED", msgid),
        "responseCode": http_form(type(error)).response_code,
        "result": {},
        "error": {"code": error.code, "message": error.message, "trace": ""},
    }
    return orjson.dumps(body)
