"""The response envelope of the ingestion API, built cheaply: it is on the hot path of every request.

``ts`` is the server's local time to the second with a numeric offset (``+00:00`` in UTC, never
``Z``), formatted once per second; ``resmsgid`` is a new UUID per response.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.errors import ApiError

API_ID = "api.data.in"
API_VER = "v2"
SUCCESS_RESULT = {"message": "Data ingested successfully"}


class _SecondClock:
    """ISO 8601 local time to the second; recomputed only when the second changes."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._text = datetime.fromtimestamp(second, tz=UTC).astimezone().isoformat()
            self._second = second
        return self._text


_clock = _SecondClock()


class _Uuid4s:
    """Random (version 4) UUID strings from a pooled ``os.urandom``: ~0.5 µs against ~2.3 µs for
    ``str(uuid.uuid4())``, which makes a system call and an object per UUID. The pool is per
    process, and the gateway's workers are spawned, never forked, so no two share one."""

    __slots__ = ("_pool",)

    def __init__(self) -> None:
        self._pool = bytearray()

    def next(self) -> str:
        pool = self._pool
        if not pool:
            pool += os.urandom(16 * 1024)
        b = pool[-16:]
        del pool[-16:]
        b[6] = (b[6] & 0x0F) | 0x40  # version 4
        b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = b.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_uuid4s = _Uuid4s()


def _params(status: str, msgid: str | None) -> dict[str, str]:
    params = {"status": status}
    if msgid is not None:
        params["msgid"] = msgid
    params["resmsgid"] = _uuid4s.next()
    return params


def success_body(msgid: str | None) -> bytes:
    return orjson.dumps(
        {
            "id": API_ID,
            "ver": API_VER,
            "ts": _clock.now(),
            "params": _params("SUCCESS", msgid),
            "responseCode": "OK",
            "result": SUCCESS_RESULT,
        }
    )


def error_body(error: ApiError, msgid: str | None, api_id: str = API_ID) -> bytes:
    body: dict[str, Any] = {
        "id": api_id,
        "ver": API_VER,
        "ts": _clock.now(),
        "params": _params("FAILED", msgid),
        "responseCode": error.response_code,
        "result": {},
        "error": {"code": error.code, "message": error.message, "trace": ""},
    }
    return orjson.dumps(body)
