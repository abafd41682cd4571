"""Request -> records: checks in order, event ids, keys, headers, record values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest_core.errors import DatasetNotFound, InvalidInput, TopicNotDefined
from ingest_core.prepare import Ingestor, msgid_of
from ingest_core.record import build_value, holds_nul, may_hold_nul
from ingest_core.registry import parse_registry
from tests.support.gateway import EXAMPLE_SCHEMA, REFERENCE_EXAMPLE, envelope, event_with_levels

REGISTRY = parse_registry(
    {
        "datasets": [
            {"id": "example", "entry_topic": "t.example", "schema": str(EXAMPLE_SCHEMA), "key": "eid"},
            {"id": "single", "entry_topic": "t.single", "batch": False},
            {"id": "dedup", "entry_topic": "t.dedup", "dedup_key": "uid"},
            {"id": "keyed", "entry_topic": "t.keyed", "key": "k"},
            {"id": "none", "entry_topic": None},
        ]
    },
    Path("/virtual/topics.yaml"),
)
INGESTOR = Ingestor(REGISTRY, max_batch_events=5)


def test_single_event_record() -> None:
    prepared = INGESTOR.prepare("example", REFERENCE_EXAMPLE)
    assert prepared.topic == "t.example"
    [record] = prepared.records
    value = orjson.loads(record.value)
    msgid = REFERENCE_EXAMPLE["params"]["msgid"]
    assert value["event_id"] == msgid
    assert value["event"] == REFERENCE_EXAMPLE["data"]
    assert record.key == b"INTERACT"
    assert dict(record.headers) == {
        "dataset": b"example",
        "event_id": msgid.encode(),
        "msgid": msgid.encode(),
    }


def test_unknown_top_level_keys_are_not_forwarded() -> None:
    doc = {**envelope({"eid": "x"}), "extra": "ignored"}
    value = orjson.loads(INGESTOR.prepare("example", doc).records[0].value)
    assert "extra" not in orjson.dumps(value).decode()


def test_batch_event_ids_and_default_key() -> None:
    prepared = INGESTOR.prepare(
        "example", envelope([{"eid": "a"}, {"eid": "b"}, {"eid": "c", "x": None}], "m")
    )
    assert [orjson.loads(r.value)["event_id"] for r in prepared.records] == ["m:0", "m:1", "m:2"]


def test_batch_records_are_build_values_with_their_own_keys_and_headers() -> None:
    events: list[dict[str, Any]] = [{"k": "a"}, {"k": 7}, {"k": True}, {"k": ""}, {"k": [1]}]
    records = INGESTOR.prepare("keyed", envelope(events, "m")).records
    syncts = orjson.loads(records[0].value)["obsrv_meta"]["syncts"]
    # build_value is the reference the sink's and the bench's records are made with.
    assert [r.value for r in records] == [
        build_value("keyed", "m", f"m:{i}", e, syncts) for i, e in enumerate(events)
    ]
    assert [r.key for r in records] == [b"a", b"7", b"true", b"m", b"m"]
    assert [dict(r.headers) for r in records] == [
        {"dataset": b"keyed", "event_id": f"m:{i}".encode(), "msgid": b"m"} for i in range(len(events))
    ]


def test_key_falls_back_to_msgid_when_field_absent_or_not_scalar() -> None:
    prepared = INGESTOR.prepare("dedup", envelope([{"a": 1}, {"uid": {"nested": 1}}], "m"))
    assert [r.key for r in prepared.records] == [b"m", b"m"]


def test_dedup_key_replaces_event_id() -> None:
    prepared = INGESTOR.prepare("dedup", envelope([{"uid": "u-1"}, {"uid": 7}, {"other": 1}], "m"))
    assert [orjson.loads(r.value)["event_id"] for r in prepared.records] == ["u-1", "7", "m:2"]


@pytest.mark.parametrize(
    ("dataset", "doc", "error", "message"),
    [
        ("nosuch", {"ver": 1}, InvalidInput, "#required should have required property 'id'"),
        ("nosuch", envelope({"a": 1}), DatasetNotFound, "Dataset with id not found"),
        ("none", envelope({"a": 1}), TopicNotDefined, "Entry topic is not defined"),
        ("single", envelope([{"a": 1}]), InvalidInput,
         "#properties/data/type should be object (this dataset takes one event per request)"),
        ("example", envelope([{"eid": "a"}] * 6), InvalidInput,
         "#properties/data/maxItems should NOT have more than 5 items"),
        ("example", envelope({"date": "x"}), InvalidInput, "data: #required should have required property 'eid'"),
        ("example", envelope([{"eid": "a"}, {"eid": ""}]), InvalidInput,
         "data[1]: #properties/eid/minLength should NOT be shorter than 1 characters"),
    ],
)  # fmt: skip
def test_checks_and_their_order(dataset: str, doc: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        INGESTOR.prepare(dataset, doc)
    assert str(info.value) == message


def test_msgid_of_tolerates_any_shape() -> None:
    assert msgid_of({"params": {"msgid": "x"}}) == "x"
    assert msgid_of({"params": {"msgid": 5}}) is None
    assert msgid_of([1]) is None
    assert msgid_of({"params": []}) is None


def test_nesting_up_to_the_limit_is_published_and_deeper_is_invalid_input() -> None:
    [record] = INGESTOR.prepare("example", envelope([event_with_levels(253)])).records
    assert orjson.loads(record.value)["event"] == event_with_levels(253)
    # One level more, and serialising it failed: a 500 for what is the client's input.
    with pytest.raises(InvalidInput) as info:
        INGESTOR.prepare("example", envelope([{"eid": "a"}, event_with_levels(254)]))
    assert info.value.message == "data[1]: nested too deeply (objects and arrays at most 253 levels deep)"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (envelope({"eid": "a\x00"}), "data: a string holds the character U+0000, which cannot be stored"),
        (envelope([{"eid": "a"}, {"eid": "b", "x": [{"k\x00": 1}]}]),
         "data[1]: a string holds the character U+0000, which cannot be stored"),
        (envelope({"eid": "a"}, msgid="m\x00"), "params.msgid: holds the character U+0000, which cannot be stored"),
    ],
)  # fmt: skip
def test_nul_characters_are_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        INGESTOR.prepare("example", doc)
    assert info.value.message == message
    # The route only looks when the body's bytes hold the escape; told there is none, nothing is checked.
    assert INGESTOR.prepare("example", doc, may_hold_nul=False).records


def test_a_backslash_before_u0000_is_ordinary_text() -> None:
    [record] = INGESTOR.prepare("example", envelope({"eid": "\\u0000"})).records
    assert orjson.loads(record.value)["event"] == {"eid": "\\u0000"}


@pytest.mark.parametrize(
    ("body", "may"),
    [
        (b'{"eid": "plain"}', False),
        (b'{"eid": "a\\nb", "note": "u0000"}', False),  # a backslash, but not the escape after it
        (b'{"eid": "\\u0000"}', True),
        (b'{"eid": "x\\"y", "note": "z\\u0000"}', True),  # the escape after an earlier backslash
        (b'{"eid": "\\\\u0000"}', True),  # the text \u0000: looked at, then found to be no U+0000
    ],
)
def test_the_byte_check_finds_every_nul_escape(body: bytes, may: bool) -> None:
    assert may_hold_nul(body) is may
    # What the byte check lets through can hold no U+0000.
    if not may:
        assert not holds_nul(orjson.loads(body))
