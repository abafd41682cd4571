"""A JSONL import's file, line by line: each line ``{"type": str, "data": object}`` routed by its
type (``types`` in the registry) and checked against the type's schema, or refused with a reason.

Pure but for reading the stream it is given. Lines are read at most ``max_line_bytes`` at a time,
so a file of any size, or a line of any length, takes bounded memory. Line numbers start at 1; an
empty last line is no line. A good line becomes one record on its type's topic: ``dataset`` the
type, ``msgid`` the import id, ``event_id`` ``<import_id>:<line>``, so a resumed import never
stores a line twice. A file that is not UTF-8 cannot be processed at all (``NotUtf8``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import msgspec
import orjson

from ingest_core.record import (
    HEADER_DATASET,
    HEADER_EVENT_ID,
    HEADER_MSGID,
    MAX_EVENT_DEPTH,
    OutRecord,
    build_raw_value,
    build_value,
    holds_nul,
    may_hold_nul,
    may_nest_too_deeply,
)
from ingest_core.registry import Registry

DEFAULT_MAX_LINE_BYTES = 1024 * 1024


class NotUtf8(ValueError):
    """The file is not UTF-8 text: the import fails as a whole."""


@dataclass(frozen=True, slots=True)
class Good:
    line: int
    topic: str
    record: OutRecord


@dataclass(frozen=True, slots=True)
class Bad:
    line: int
    message: str


def lines(stream: IO[bytes], max_line_bytes: int, after: int = 0) -> Iterator[tuple[int, bytes | None]]:
    """``(number, line without its end)`` for each line after line ``after``; None for a line
    longer than ``max_line_bytes`` (the rest of it is read and dropped, never held)."""
    number = 0
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        number += 1
        too_long = len(chunk) > max_line_bytes and not chunk.endswith(b"\n")
        while too_long and not chunk.endswith(b"\n"):
            chunk = stream.readline(max_line_bytes + 1)
            if not chunk:
                break
        if number > after:
            yield number, None if too_long else chunk.rstrip(b"\r\n")


class _Line(msgspec.Struct):
    """A line, its ``data`` kept as the JSON it came in (unknown keys ignored, as on the general path)."""

    type: str
    data: msgspec.Raw


_decode_line = msgspec.json.Decoder(_Line).decode


class LineChecker:
    def __init__(self, registry: Registry, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._types = registry.types
        self.max_line_bytes = max_line_bytes

    def check(self, import_id: str, number: int, line: bytes | None, syncts_ms: int) -> Good | Bad | None:
        """A line's record, or why it is refused; None for an empty line (not counted).
        Raises NotUtf8."""
        if line is None:
            return Bad(number, f"longer than {self.max_line_bytes} bytes")
        if not line.strip():
            return None
        if not line.isascii():
            try:
                line.decode()
            except UnicodeDecodeError:
                raise NotUtf8(f"line {number} is not UTF-8") from None
        return self._check_raw(import_id, number, line, syncts_ms) or self._check(
            import_id, number, line, syncts_ms
        )

    def _check_raw(self, import_id: str, number: int, line: bytes, syncts_ms: int) -> Good | None:
        """The common line, checked by its type's compiled schema and forwarded as it came, without
        parsing its data into Python (as the gateway's raw path does); None for anything it cannot
        accept for certain, which the general path then decides and words."""
        if may_hold_nul(line):
            return None
        try:
            doc = _decode_line(line)
            target = self._types.get(doc.type)
            if target is None or target.entry_topic is None or target.event_type is None:
                return None
            if may_nest_too_deeply(doc.data):
                return None
            target.event_type.decode(doc.data)
        except (msgspec.DecodeError, RecursionError):
            return None
        event_id = f"{import_id}:{number}"
        value = build_raw_value(target.id, import_id, event_id, doc.data, syncts_ms)
        key = event_id.encode()
        headers: list[tuple[str, str | bytes | None]] = [
            (HEADER_DATASET, target.id.encode()), (HEADER_EVENT_ID, key), (HEADER_MSGID, import_id.encode()),
        ]  # fmt: skip
        return Good(number, target.entry_topic, OutRecord(key, value, headers))

    def _check(self, import_id: str, number: int, line: bytes, syncts_ms: int) -> Good | Bad:
        try:
            doc: Any = orjson.loads(line)
        except orjson.JSONDecodeError:
            return Bad(number, "not valid JSON")
        if not (
            isinstance(doc, dict) and isinstance(doc.get("type"), str) and isinstance(doc.get("data"), dict)
        ):
            return Bad(number, 'not an object with a string "type" and an object "data"')
        target = self._types.get(doc["type"])
        if target is None or target.entry_topic is None:
            return Bad(number, f"unknown type {doc['type'][:128]!r}")
        data: dict[str, Any] = doc["data"]
        if target.validator is not None:
            problem = target.validator.first_error(data)
            if problem is not None:
                return Bad(number, f"data: {problem}")
        if may_hold_nul(line) and holds_nul(data):
            return Bad(number, "data: a string holds the character U+0000, which cannot be stored")
        event_id = f"{import_id}:{number}"
        try:
            value = build_value(target.id, import_id, event_id, data, syncts_ms)
        except orjson.JSONEncodeError:  # deeper than a record can hold
            return Bad(number, f"data: nested too deeply (at most {MAX_EVENT_DEPTH} levels)")
        headers: list[tuple[str, str | bytes | None]] = [
            (HEADER_DATASET, target.id.encode()), (HEADER_EVENT_ID, event_id.encode()),
            (HEADER_MSGID, import_id.encode()),
        ]  # fmt: skip
        return Good(number, target.entry_topic, OutRecord(event_id.encode(), value, headers))
