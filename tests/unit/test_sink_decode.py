"""The sink's decoder: rows from good records, the right reason for each bad one, the gateway's id rule."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Message

from consumers.sink.decode import Decoder, Rejected
from ingest_core.record import MAX_EVENT_DEPTH, build_value, event_id_for
from ingest_core.registry import parse_registry
from ingest_core.store import Row
from tests.support.gateway import EXAMPLE_SCHEMA
from tests.support.mutate import mutate

REGISTRY = parse_registry(
    {
        "datasets": [
            {"id": "example", "entry_topic": "t.example", "schema": str(EXAMPLE_SCHEMA)},
            {"id": "dedup", "entry_topic": "t.dedup", "dedup_key": "uid"},
            {"id": "plain", "entry_topic": "t.plain"},
        ]
    },
    Path("/virtual/topics.yaml"),
)
DECODER = Decoder(REGISTRY)


def test_good_record_becomes_a_row() -> None:
    value = build_value("example", "m-1", "m-1:3", {"eid": "E"}, 1_700_000_000_123)
    row = DECODER.decode("t.example", 2, 41, value)
    assert isinstance(row, Row)
    assert (row.dataset, row.event_id, row.msgid, row.topic, row.partition, row.offset) == (
        "example", "m-1:3", "m-1", "t.example", 2, 41,
    )  # fmt: skip
    assert orjson.loads(row.event_json) == {"eid": "E"}
    assert row.received_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


def test_dedup_key_gives_the_same_event_id_as_the_gateway() -> None:
    event = {"uid": "user-7", "x": 1}
    gateway_id = event_id_for("m-9", 4, event, "uid")
    # A Kafka-native producer may put anything in event_id: the dataset's dedup_key wins, as at the gateway.
    row = DECODER.decode("t.dedup", 0, 0, build_value("dedup", "m-9", "whatever", event, 1))
    assert isinstance(row, Row)
    assert row.event_id == gateway_id == "user-7"


@pytest.mark.parametrize(
    ("topic", "value", "reason", "fragment"),
    [
        ("t.example", None, "not_json", "no value"),
        ("t.example", b"\xff\x00", "not_json", "not valid JSON"),
        ("t.example", b'{"dataset": "example"}', "bad_record", "record: #required should have required property 'msgid'"),
        ("t.example", build_value("nosuch", "m", "m", {}, 1), "unknown_dataset", "unknown dataset 'nosuch'"),
        ("t.other", build_value("example", "m", "m", {"eid": "E"}, 1), "wrong_topic", "does not use topic 't.other'"),
        ("t.example", build_value("example", "m", "m", {"eid": 1}, 1), "schema", "event: #properties/eid/type should be string"),
        # Beyond year 9999: no timestamp column holds it (it stopped the sink, a ValueError).
        ("t.example", build_value("example", "m", "m", {"eid": "E"}, 253402300800000), "bad_record",
         "record: #properties/obsrv_meta/properties/syncts/maximum should be <= 253402300799999"),
    ],
)  # fmt: skip
def test_bad_records_are_rejected_with_their_reason(
    topic: str, value: bytes | None, reason: str, fragment: str
) -> None:
    out = DECODER.decode(topic, 0, 0, value)
    assert isinstance(out, Rejected)
    assert out.reason == reason
    assert fragment in out.error


def test_event_is_stored_as_the_text_it_had_in_the_record() -> None:
    # A Kafka-native producer's formatting (json.dumps' spaces, escapes) is kept, not re-serialised.
    value = (
        b'{"dataset": "example", "msgid": "m", "event_id": "m:0",'
        b' "event": {"eid": "E", "name": "caf\\u00e9"}, "obsrv_meta": {"syncts": 5}}'
    )
    row = DECODER.decode("t.example", 0, 7, value)
    assert isinstance(row, Row)
    assert row.event_json == '{"eid": "E", "name": "caf\\u00e9"}'
    assert orjson.loads(row.event_json) == {"eid": "E", "name": "café"}


def test_records_the_fast_path_declines_are_decided_by_the_schema() -> None:
    # syncts 5.0 is an integer to JSON Schema, not to the typed fast path: the general path stores it.
    value = b'{"dataset": "example", "msgid": "m", "event_id": "m", "event": {"eid": "E"}, "obsrv_meta": {"syncts": 5.0}}'
    row = DECODER.decode("t.example", 0, 0, value)
    assert isinstance(row, Row)
    assert row.received_at == datetime(1970, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)
    assert row.event_json == '{"eid":"E"}'
    # null where the schema wants a string, an event that is not an object: refused with the schema's words.
    for meta, event, fragment in [
        (
            '{"syncts": 5, "source": {"connector": null}}',
            '{"eid": "E"}',
            "#properties/obsrv_meta/properties/source",
        ),
        ('{"syncts": 5}', '[{"eid": "E"}]', "#properties/event/type should be object"),
    ]:
        bad = (
            f'{{"dataset": "example", "msgid": "m", "event_id": "m", "event": {event}, "obsrv_meta": {meta}}}'
        )
        out = DECODER.decode("t.example", 0, 0, bad.encode())
        assert isinstance(out, Rejected)
        assert (out.reason, fragment in out.error) == ("bad_record", True), out.error


@pytest.mark.parametrize("field", ["msgid", "event"])
def test_a_lone_surrogate_is_not_json_rather_than_a_row_the_store_cannot_encode(field: str) -> None:
    msgid, event = ('"m\\ud800"', '{"eid": "E"}') if field == "msgid" else ('"m"', '{"eid": "E\\udc00"}')
    value = f'{{"dataset": "example", "msgid": {msgid}, "event_id": "m", "event": {event}, "obsrv_meta": {{"syncts": 1}}}}'
    out = DECODER.decode("t.example", 0, 0, value.encode())
    assert isinstance(out, Rejected)
    assert out.reason == "not_json"


def nested(levels: int) -> bytes:
    """JSON text of ``levels`` objects, one inside the other."""
    return b'{"x":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


@pytest.mark.parametrize(
    ("levels", "syncts", "reason", "fragment"),
    [
        # Deeper than msgspec goes (~1,000): the general path, which must re-serialise the event.
        (1_010, b"5", "bad_record", "event: nested too deeply (objects and arrays at most 253 levels deep)"),
        # Deeper than orjson parses (1,024): its reason is kept.
        (1_100, b"5", "not_json", "value is not valid JSON: depth limit exceeded"),
        # The general path (a float syncts) beyond what orjson serialises.
        (300, b"5.0", "bad_record", "nested too deeply"),
    ],
)
def test_deeply_nested_records_are_rejected_not_raised(
    levels: int, syncts: bytes, reason: str, fragment: str
) -> None:
    # Such a record raised RecursionError out of the decoder: the sink stopped, and stopped again
    # on the same record after every restart.
    value = (
        b'{"dataset": "example", "msgid": "m", "event_id": "m:0", "event": {"eid": "E", "deep": '
        + nested(levels) + b'}, "obsrv_meta": {"syncts": ' + syncts + b"}}"
    )  # fmt: skip
    out = DECODER.decode("t.example", 0, 0, value)
    assert isinstance(out, Rejected)
    assert (out.reason, fragment in out.error) == (reason, True), out.error


@pytest.mark.parametrize("syncts", [b"5", b"5.0"], ids=["fast path", "general path"])
@pytest.mark.parametrize("levels", [MAX_EVENT_DEPTH, MAX_EVENT_DEPTH + 1, 600])
def test_the_gateways_nesting_limit_holds_on_either_path(levels: int, syncts: bytes) -> None:
    # The event itself is one level: nested(levels - 1) inside it makes it ``levels`` deep. Events
    # 254-1,000 levels deep used to be stored by the fast path and refused by the general one.
    value = (
        b'{"dataset": "example", "msgid": "m", "event_id": "m:0", "event": {"eid": "E", "deep": '
        + nested(levels - 1) + b'}, "obsrv_meta": {"syncts": ' + syncts + b"}}"
    )  # fmt: skip
    out = DECODER.decode("t.example", 0, 0, value)
    if levels <= MAX_EVENT_DEPTH:
        assert isinstance(out, Row)
        assert orjson.loads(out.event_json) == orjson.loads(value)["event"]
    else:
        assert out == Rejected(
            "bad_record",
            f"event: nested too deeply (objects and arrays at most {MAX_EVENT_DEPTH} levels deep)",
        )


def test_brackets_inside_strings_do_not_make_an_event_too_deep() -> None:
    event = {"eid": "E", "text": "[{" * 400}
    out = DECODER.decode("t.example", 0, 0, build_value("example", "m", "m:0", event, 5))
    assert isinstance(out, Row)
    assert orjson.loads(out.event_json) == event


_INTERNAL = Rejected("internal", "the sink could not decode this record: KeyError")


def _records(topic: str, values: list[bytes]) -> list[Message]:
    return [Message(topic=topic, partition=0, offset=o, value=v) for o, v in enumerate(values)]


# The compiled path takes the first; the second's dedup key is beyond what it reads alike.
@pytest.mark.parametrize("event", [b'{"uid": "u"}', b'{"uid": 1180591620717411303424}'])
def test_a_record_that_breaks_the_decoder_is_rejected_not_raised(
    monkeypatch: pytest.MonkeyPatch, event: bytes
) -> None:
    decoder = Decoder(REGISTRY)  # its own: the converted timestamps are cached
    real = decoder._receive

    def broken(syncts: float) -> datetime:
        if syncts == 13:
            raise KeyError("a bug")
        return real(syncts)

    monkeypatch.setattr(decoder, "_receive", broken)
    good, bad = (
        b'{"dataset": "dedup", "msgid": "m", "event_id": "m", "event": %s, "obsrv_meta": {"syncts": %d}}'
        % (event, syncts)
        for syncts in (1, 13)
    )
    assert decoder.decode("t.dedup", 0, 0, bad) == _INTERNAL
    assert (decoder._compiled_row(_records("t.dedup", [good])[0]) is not None) == (event == b'{"uid": "u"}')
    # The records around it are decoded.
    rows, refused = decoder.decode_all(_records("t.dedup", [good, bad, good]))
    assert [row.offset for row in rows] == [0, 2]
    assert refused == [(1, _INTERNAL)]


def test_a_bug_on_the_compiled_path_is_reported_not_handed_to_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # scalar_text is the compiled path's alone: were its bug caught there, the general path would
    # store the record as though nothing had happened.
    def broken(_value: object) -> str:
        raise KeyError("a bug")

    monkeypatch.setattr("consumers.sink.decode.scalar_text", broken)
    value = build_value("dedup", "m", "m", {"uid": "u"}, 1)
    assert DECODER.decode("t.dedup", 0, 0, value) == _INTERNAL
    assert DECODER.decode_all(_records("t.dedup", [value])) == ([], [(0, _INTERNAL)])


@pytest.mark.parametrize(
    ("value", "nul"),
    [
        (build_value("example", "m", "m:0", {"eid": "E", "x": ["\x00"]}, 1), True),
        (build_value("example", "m\x00", "m:0", {"eid": "E"}, 1), True),
        (build_value("example", "m", "m:0", {"eid": "\\u0000"}, 1), False),  # a backslash, then text
        (b'{"dataset": "example", "msgid": "m", "event_id": "m:0", "event": {"eid": "E"},'
         b' "obsrv_meta": {"syncts": 1}, "note": "\\u0000"}', False),  # not a stored field
    ],
)  # fmt: skip
def test_nul_characters_in_stored_fields_are_rejected(value: bytes, nul: bool) -> None:
    out = DECODER.decode("t.example", 0, 0, value)
    if nul:
        assert out == Rejected(
            "bad_record", "record: a string holds the character U+0000, which cannot be stored"
        )
    else:
        assert isinstance(out, Row)


def test_what_the_compiled_type_skips_is_still_checked_as_utf8() -> None:
    # msgspec does not check the UTF-8 of fields it skips: the event's text is decoded strictly.
    value = build_value("example", "m", "m", {"eid": "E", "x": "é"}, 1).replace("é".encode(), b"\xff")
    out = DECODER.decode("t.example", 0, 0, value)
    assert isinstance(out, Rejected)
    assert out.reason == "not_json"


def test_a_dedup_key_beyond_64_bits_gets_the_id_the_gateway_gives_it() -> None:
    event = b'{"uid": 1180591620717411303424}'
    value = (
        b'{"dataset": "dedup", "msgid": "m", "event_id": "m", "event": %s, "obsrv_meta": {"syncts": 1}}'
        % event
    )
    row = DECODER.decode("t.dedup", 0, 0, value)
    assert isinstance(row, Row)
    # As orjson reads it, on the gateway's general path (its raw path leaves such events to it).
    assert row.event_id == event_id_for("m", None, orjson.loads(event), "uid") == "1.1805916207174113e+21"


_VALUES: list[Any] = [
    None,
    True,
    0,
    1.5,
    5.0,
    "",
    "E",
    [],
    {},
    {"eid": "E"},
    2**70,
    "example",
    "dedup",
    "t.example",
]


_NAMES = ["eid", "uid", "ets", "date", "x", "dataset"]

# A good event per dataset (compiled schema, dedup key, no schema), for the mutations to start from.
_SEEDS: list[tuple[str, dict[str, Any]]] = [
    ("t.example", {"eid": "E", "ets": 5, "date": "d", "x": [1, {"y": None}]}),
    ("t.dedup", {"uid": "u", "x": 1}),
    ("t.plain", {"a": {"b": [1, 2]}}),
]


def _verdict(out: Row | Rejected) -> Any:
    if isinstance(out, Rejected):
        return out
    # The stored text may differ (the fast path keeps the record's own); the JSON may not.
    return out._replace(event_json=orjson.loads(out.event_json))


def test_every_record_gets_the_verdict_the_general_path_gives_it() -> None:
    rng = random.Random(7)
    rows = 0
    for _ in range(20000):
        topic, event = rng.choice(_SEEDS)
        record = orjson.loads(build_value(topic[2:], "m", "m:1", event, 1_700_000_000_000))
        doc = mutate(rng, record, _VALUES, _NAMES)
        value = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
        out = DECODER.decode(topic, 0, 0, value)
        assert _verdict(out) == _verdict(DECODER._decode_general(topic, 0, 0, value)), doc
        rows += isinstance(out, Row)
    assert rows > 5000  # not vacuous


def test_decode_all_gives_each_record_what_decode_gives_it() -> None:
    rng = random.Random(11)
    messages = []
    for offset in range(5000):
        topic, event = rng.choice(_SEEDS)
        doc = orjson.loads(build_value(topic[2:], "m", f"m:{offset}", event, 1_700_000_000_000 + offset % 7))
        if rng.random() < 0.5:
            doc = mutate(rng, doc, _VALUES, _NAMES)
        value = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
        messages.append(Message(topic=topic, partition=offset % 3, offset=offset, value=value))
    messages.append(Message(topic="t.example", partition=0, offset=5000, value=None))

    rows, refused = DECODER.decode_all(messages)

    each = [DECODER.decode(m.topic() or "", m.partition() or 0, m.offset() or 0, m.value()) for m in messages]
    assert rows == [out for out in each if isinstance(out, Row)]  # the stored text included
    assert refused == [(i, out) for i, out in enumerate(each) if isinstance(out, Rejected)]
    # Not vacuous: both paths were taken, many times each.
    shortcut = sum(DECODER._compiled_row(m) is not None for m in messages)
    assert 1000 < shortcut < len(rows)
    assert len(refused) > 500


def test_records_of_sources_and_types_are_rows_checked_by_their_schemas() -> None:
    registry = parse_registry(
        {
            "datasets": [],
            "sources": [{"id": "src", "topic": "source.src"}],
            "types": [{"type": "profile", "topic": "import.profile", "schema": str(EXAMPLE_SCHEMA)}],
        },
        Path("/virtual/topics.yaml"),
    )
    decoder = Decoder(registry)
    entry = {"date": "2024-03-08 00:29:00", "name": "User 1", "content": "Feedback 1"}
    row = decoder.decode("source.src", 0, 7, build_value("src", "imp-1", "imp-1:0", entry, 1))
    assert isinstance(row, Row)
    assert (row.dataset, row.event_id, row.topic) == ("src", "imp-1:0", "source.src")
    bad_entry = decoder.decode(
        "source.src", 0, 8, build_value("src", "imp-1", "imp-1:1", {**entry, "date": "x"}, 1)
    )
    assert isinstance(bad_entry, Rejected)
    assert bad_entry.reason == "schema"
    wrong_topic = decoder.decode("import.profile", 0, 9, build_value("src", "imp-1", "imp-1:2", entry, 1))
    assert isinstance(wrong_topic, Rejected)
    assert wrong_topic.reason == "wrong_topic"
    typed = decoder.decode(
        "import.profile", 1, 0, build_value("profile", "imp-2", "imp-2:1", {"eid": "E"}, 1)
    )
    assert isinstance(typed, Row)
    assert typed.dataset == "profile"
