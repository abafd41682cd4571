"""The events and request bodies every scenario uses, so that figures compare like with like."""

from __future__ import annotations

import csv
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import orjson

from ingest_core.record import OutRecord, build_records, build_value


def event(i: int) -> dict[str, Any]:
    """A ~250-byte telemetry-like event."""
    return {
        "eid": "INTERACT",
        "ets": 1668591949682 + i,
        "ver": "3.0",
        "mid": f"INTERACT:{i:012d}-5b1f2c",
        "actor": {"id": f"user-{i % 5000:05d}", "type": "User"},
        "context": {"channel": "web", "env": "home", "pdata": {"id": "bench.app", "ver": "1.0.0"}},
        "edata": {"type": "CLICK", "id": "start-button", "pageid": "home", "duration": 12.5},
        "date": "2022-01-01",
    }


def body(events: int, msgid: str = "bench-0001") -> bytes:
    data: Any = event(0) if events == 1 else [event(i) for i in range(events)]
    return orjson.dumps(
        {"id": "api.data.in", "ver": "v2", "ts": "1711966306164", "params": {"msgid": msgid}, "data": data}
    )


def source_body(entries: int, source: str = "bench") -> bytes:
    """A ``POST /api/v1/source/import`` body of ``entries`` entries (~80 bytes each)."""
    payload = [
        {"date": "2024-03-08 00:29:00", "name": f"User {i}", "content": f"Feedback number {i} on the product"}
        for i in range(entries)
    ]
    return orjson.dumps({"source_id": source, "payload": payload})


def write_jsonl(path: Path, lines: int) -> None:
    """A JSONL import's file: ``lines`` lines of ~300 bytes, user profiles and transactions."""
    pad = "x" * 150
    with path.open("wb") as out:
        for i in range(lines):
            data: dict[str, Any]
            if i % 2:
                data = {"user_id": f"u{i}", "name": f"User {i}", "email": f"user{i}@example.com", "note": pad}
                out.write(orjson.dumps({"type": "user_profile", "data": data}) + b"\n")
            else:
                data = {"transaction_id": f"tx{i}", "amount": i / 100, "currency": "USD", "note": pad}
                out.write(orjson.dumps({"type": "transaction", "data": data}) + b"\n")


def record_value(i: int) -> bytes:
    """The Kafka value the gateway would write for event ``i``: what the raw producers send."""
    return build_value("example", "bench-0001", f"bench-0001:{i}", event(i), 1711966306164)


def records(count: int) -> list[OutRecord]:
    """The records the gateway makes of events 0..count-1 in one batch request: the same values,
    keys (the dataset's ``key`` field, ``eid``) and headers; what the raw producers send."""
    events = [event(i) for i in range(count)]
    return build_records("example", "bench-0001", events, True, "eid", None, 1711966306164)


def backlog_value(i: int) -> bytes:
    """Record ``i`` of the sink's backlog: ``record_value``'s 1,000 values over and over, each with
    an event id of its own (``b<i // 1000>:<i % 1000>``), so that every record is a new row."""
    return _record_values()[i % 1000].replace(b'"bench-0001:', f'"b{i // 1000}:'.encode(), 1)


@functools.cache
def _record_values() -> list[bytes]:
    return [record_value(i) for i in range(1000)]


def single_record() -> OutRecord:
    """The record the gateway makes of ``body(1)``'s event: its value, key and headers."""
    return build_records("example", "bench-0001", [event(0)], False, "eid", None, 1711966306164)[0]


ENTITY_COLUMNS = ("name", "age", "balance", "active", "birthday", "signed_up")


def _entity_row(i: int) -> tuple[str, int, float, bool, dt.date, dt.datetime]:
    day = dt.date(2000, 1, 1) + dt.timedelta(days=i % 9000)
    moment = dt.datetime(day.year, day.month, day.day, i % 24, i % 60, i % 60)  # noqa: DTZ001 (a sheet's naive cell)
    return f"Customer {i}", i % 90, i + 0.25, bool(i % 2), day, moment


def write_entity_csv(path: Path, rows: int) -> None:
    """An entity import's CSV: a header and ``rows`` rows of 6 columns (string, integer, number,
    boolean, date, date-time), ~75 bytes each."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(ENTITY_COLUMNS)
        for i in range(rows):
            name, age, balance, active, day, moment = _entity_row(i)
            writer.writerow(
                [
                    name,
                    age,
                    balance,
                    "true" if active else "false",
                    day.isoformat(),
                    moment.isoformat(sep=" "),
                ]
            )


def write_entity_xlsx(path: Path, rows: int) -> None:
    """The same rows as an XLSX workbook with typed cells (written in openpyxl's streaming mode)."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(list(ENTITY_COLUMNS))
    for i in range(rows):
        sheet.append(list(_entity_row(i)))
    book.save(path)
