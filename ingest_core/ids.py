"""Ids of imports: ``import_`` and a ULID in lower case (``import_01hexzqs3n8hx83psy4ernj2zz``), as
the JSONL-import reference shows them: 48 bits of milliseconds then 80 random bits, in Crockford's
base32, so ids sort by creation time."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def ulid(now_ms: int | None = None) -> str:
    """A new ULID, 26 lower-case characters."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_import_id() -> str:
    return f"import_{ulid()}"
