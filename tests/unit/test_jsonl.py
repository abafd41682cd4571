"""JSONL import lines: routed by type, checked by the type's schema, every kind of bad line given its
reason and line number, lines of any length in bounded memory."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from ingest_core.jsonl import Bad, Good, LineChecker, NotUtf8, lines
from ingest_core.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
CHECKER = LineChecker(load_registry(ROOT / "topics.yaml"), max_line_bytes=200)

REFERENCE = b"""{"type": "user_profile", "data": {"user_id": "12345", "name": "John Doe", "email": "john@example.com"}}
{"type": "transaction", "data": {"transaction_id": "tx_001", "amount": 99.99, "currency": "USD"}}
{"type": "user_profile", "data": {"user_id": "67890", "name": "Jane Smith", "email": "jane@example.com"}}
"""


def check_all(text: bytes, after: int = 0) -> list[Good | Bad | None]:
    return [CHECKER.check("import_x", n, line, 1) for n, line in lines(io.BytesIO(text), 200, after)]


def test_the_references_lines_become_records_on_their_types_topics() -> None:
    out = check_all(REFERENCE)
    assert all(isinstance(o, Good) for o in out)
    goods = [o for o in out if isinstance(o, Good)]
    assert [(g.line, g.topic) for g in goods] == [
        (1, "import.user_profile"), (2, "import.transaction"), (3, "import.user_profile"),
    ]  # fmt: skip
    value = orjson.loads(goods[1].record.value)
    assert (value["dataset"], value["msgid"], value["event_id"]) == ("transaction", "import_x", "import_x:2")
    assert value["event"] == {"transaction_id": "tx_001", "amount": 99.99, "currency": "USD"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'["type", "data"]', 'not an object with a string "type" and an object "data"'),
        (b'{"type": 7, "data": {}}', 'not an object with a string "type"'),
        (b'{"type": "user_profile", "data": []}', 'not an object with a string "type" and an object "data"'),
        (b'{"type": "nope", "data": {}}', "unknown type 'nope'"),
        (b'{"type": "user_profile", "data": {"name": "no id"}}', "data: #required should have required property 'user_id'"),
        (b'{"type": "transaction", "data": {"x": "a\\u0000b"}}', "U+0000"),
        (b'{"type": "transaction", "data": {"x": "' + b"y" * 300 + b'"}}', "longer than 200 bytes"),
    ],
)  # fmt: skip
def test_each_kind_of_bad_line_has_its_reason(line: bytes, reason: str) -> None:
    (out,) = check_all(b'{"type": "transaction", "data": {}}\n' + line + b"\n")[1:]
    assert isinstance(out, Bad)
    assert out.line == 2
    assert reason in out.message


def test_an_empty_last_line_is_no_line_and_a_long_line_is_skipped_whole() -> None:
    text = (
        b'{"type": "transaction", "data": {}}\n' + b"z" * 1000 + b'\n{"type": "transaction", "data": {}}\n\n'
    )
    out = check_all(text)
    assert [type(o).__name__ for o in out] == ["Good", "Bad", "Good", "NoneType"]
    assert [o.line for o in out if o is not None] == [1, 2, 3]


def test_a_resumed_file_starts_after_its_checkpoint() -> None:
    assert [o.line for o in check_all(REFERENCE, after=2) if o is not None] == [3]


def test_a_file_that_is_not_utf8_fails_as_a_whole() -> None:
    with pytest.raises(NotUtf8):
        check_all(b'{"type": "transaction", "data": {"x": "\xff"}}\n')


def test_both_paths_make_the_same_record() -> None:
    """A line the compiled path takes is forwarded as it came; the general path's record of it holds
    the same value (and is byte for byte the same when the line is as orjson writes it)."""
    line = orjson.dumps({"type": "user_profile", "data": {"user_id": "1", "name": "A", "email": "a@b"}})
    fast = CHECKER._check_raw("import_x", 5, line, 7)
    slow = CHECKER._check("import_x", 5, line, 7)
    assert isinstance(fast, Good)
    assert isinstance(slow, Good)
    assert fast.record.value == slow.record.value
    assert fast.record.headers == slow.record.headers
    assert fast.record.key == slow.record.key
    spaced = b'{"type": "user_profile", "data": {"user_id": "1",  "name": "A"}}'
    fast = CHECKER._check_raw("import_x", 6, spaced, 7)
    assert isinstance(fast, Good)
    assert b'"event":{"user_id": "1",  "name": "A"}' in fast.record.value  # as sent
    assert orjson.loads(fast.record.value)["event"] == {"user_id": "1", "name": "A"}
