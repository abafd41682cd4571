"""The raw path (``Ingestor.prepare_raw``): the records ``prepare`` makes, or None to leave it to it."""

from __future__ import annotations

import copy
import json
import logging
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest_core.prepare import Ingestor
from ingest_core.registry import parse_registry
from tests.support.gateway import REFERENCE_EXAMPLE, envelope, event_with_levels
from tests.support.mutate import mutate
from tests.unit.test_ingest import INGESTOR

# INGESTOR: the registry of test_ingest.py (example, single, dedup, keyed, none), 5 events at most.


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both paths stamp syncts from the clock: the same instant, so that records compare whole.
    monkeypatch.setattr("ingest_core.prepare.time.time", lambda: 1711966306.164)


def both(dataset: str, doc: Any) -> tuple[list[Any], list[Any]]:
    """The records of each path for ``doc`` (the raw path must take it)."""
    # As orjson writes it (json also writes what nests deeper than orjson's limit).
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    raw = INGESTOR.prepare_raw(dataset, body)
    assert raw is not None
    parsed = INGESTOR.prepare(dataset, doc)
    assert (raw.dataset, raw.topic, raw.msgid) == (parsed.dataset, parsed.topic, parsed.msgid)
    return raw.records, parsed.records


VALID = [
    ("example", REFERENCE_EXAMPLE),
    ("example", envelope([{"eid": "a"}, {"eid": "b", "x": [1, {"y": None}]}, {"eid": "c", "ets": 5}], "m")),
    ("example", {**envelope({"eid": "x"}), "extra": {"ignored": True}}),
    ("example", envelope({"eid": 'é"\\/\n\t😀', "date": "d", "free": -0.5}, 'msg "quoted" é')),
    ("example", envelope([{"eid": "k"}] * 5)),
    ("single", envelope({"anything": [1, 2.5, "x", None, True]})),
    ("keyed", envelope([{"k": "s"}, {"k": 7}, {"k": 1.5}, {"k": True}, {"k": {"no": 1}}])),
    ("keyed", envelope([{"k": ""}, {"k": None}, {"other": 1}])),
    ("dedup", envelope([{"uid": "u-1"}, {"uid": 7}, {"uid": False}, {"uid": [1]}, {"other": 1}], "m")),
    ("dedup", envelope({"uid": "only"}, "m")),
    # One event (not in a list): the single-event path, each kind of key and dedup value.
    ("keyed", envelope({"k": 7}, "m")),
    ("keyed", envelope({"k": True}, 'm "q"')),
    ("keyed", envelope({"k": {"no": 1}}, "m")),
    ("keyed", envelope({"k": ""}, "m")),
    ("keyed", envelope({"other": 1}, "m")),
    ("dedup", envelope({"uid": 7.5}, "m")),
    ("dedup", envelope({"uid": 'é"\\'}, "m")),
    ("dedup", envelope({"uid": [1]}, "m")),
    ("dedup", envelope({"other": 1}, "m")),
    ("example", envelope([event_with_levels(253)])),
]


@pytest.mark.parametrize(("dataset", "doc"), VALID)
def test_the_raw_path_makes_byte_for_byte_the_records_prepare_makes(dataset: str, doc: Any) -> None:
    raw, parsed = both(dataset, doc)
    assert raw == parsed


def test_events_are_forwarded_as_sent() -> None:
    event = b'{ "eid" : "a",\n  "big": 123456789012345678901234567890, "e": "\\u00e9", "n": 1E2 }'
    body = (
        b'{"id": "api.data.in", "ver": "v2", "ts": "1", "params": {"msgid": "m"}, "data": [\n  %s\n]}' % event
    )
    prepared = INGESTOR.prepare_raw("example", body)
    assert prepared is not None
    [record] = prepared.records
    assert event in record.value
    # The whole value is JSON, and its event is the event sent, the big integer exact.
    assert json.loads(record.value)["event"] == json.loads(event)
    assert record.key == b"a"


def _with(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target = out
    for step in path[:-1]:
        target = target[step]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_DROP = object()
OK = envelope([{"eid": "a"}, {"eid": "b"}])


@pytest.mark.parametrize(
    ("dataset", "body"),
    [
        ("nope", orjson.dumps(OK)),
        ("none", orjson.dumps(OK)),
        ("single", orjson.dumps(envelope([{"a": 1}]))),
        ("example", orjson.dumps(envelope([{"eid": "a"}] * 6))),  # more than max_batch_events
        ("example", orjson.dumps(envelope([]))),
        ("example", orjson.dumps(envelope([{"eid": "a"}, 1]))),
        ("example", orjson.dumps(envelope("text"))),
        ("example", orjson.dumps(envelope([{"eid": ""}]))),  # the dataset's schema
        ("example", orjson.dumps(envelope({"ets": 1}))),
        ("example", orjson.dumps(_with(OK, ("id",), "api.other"))),
        ("example", orjson.dumps(_with(OK, ("ver",), 2))),
        ("example", orjson.dumps(_with(OK, ("ts",), _DROP))),
        ("example", orjson.dumps(_with(OK, ("params", "msgid"), ""))),
        ("example", orjson.dumps(_with(OK, ("params", "extra"), 1))),
        ("example", orjson.dumps(_with(OK, ("params",), []))),
        ("example", orjson.dumps(envelope({"eid": "\\u0000"}))),  # U+0000: prepare words it
        ("example", orjson.dumps(envelope({"eid": "a", "x": "\u0000"}))),
        ("example", orjson.dumps(envelope({"eid": "a"})).replace(b'"a"', b'"\xff"')),  # not UTF-8
        ("example", orjson.dumps(envelope({"eid": "a", "x": "é"})).replace("é".encode(), b"\xed\xa0\x80")),
        ("example", json.dumps(envelope([event_with_levels(254)])).encode()),
        ("example", orjson.dumps(envelope({"eid": "a"}))[:-1]),  # not JSON
        ("example", b'{"id": "api.data.in", "ver": "v2", "ts": "1", "params": {"msgid": "m"}, "data": {"eid": "a"}} x'),
    ],
)  # fmt: skip
def test_what_the_raw_path_cannot_take_is_left_to_prepare(dataset: str, body: bytes) -> None:
    assert INGESTOR.prepare_raw(dataset, body) is None


def test_a_schema_outside_the_compiled_subset_leaves_every_request_to_prepare(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "object", "properties": {"eid": {"type": "string", "pattern": "^a"}}}')
    with caplog.at_level(logging.INFO, logger="ingest_core.registry"):
        registry = parse_registry(
            {"datasets": [{"id": "p", "entry_topic": "t.p", "schema": str(schema)}]}, tmp_path / "topics.yaml"
        )
    # Said once, at start, so that an operator knows which datasets take the slower path.
    [note] = [r.getMessage() for r in caplog.records]
    assert note.startswith("dataset 'p': its schema (")
    assert "uses pattern, outside the subset" in note
    ingestor = Ingestor(registry, max_batch_events=5)
    assert registry.get("p").event_type is None  # type: ignore[union-attr]  # registered above
    assert ingestor.prepare_raw("p", orjson.dumps(envelope({"eid": "a"}))) is None
    assert ingestor.prepare("p", envelope({"eid": "a"})).records


# Generated requests: whatever the raw path takes, prepare takes, with the same records. ----------

_VALUES: list[Any] = [
    None,
    True,
    0,
    1.5,
    "",
    "x",
    [],
    {},
    {"eid": "a"},
    [{"eid": "a"}],
    [{}],
    {"msgid": "m"},
    2**70,
]


_NAMES = ["extra", "eid", "msgid", "data", "ets", "k", "uid"]


def test_whatever_the_raw_path_takes_prepare_takes_with_the_same_records() -> None:
    rng = random.Random(11)
    taken = 0
    for _ in range(20000):
        dataset, doc = rng.choice(VALID[:-1])
        doc = mutate(rng, doc, _VALUES, _NAMES)
        try:
            body = orjson.dumps(doc)
        except orjson.JSONEncodeError:
            body = json.dumps(doc).encode()  # integers beyond 64 bits
        raw = INGESTOR.prepare_raw(dataset, body)
        if raw is None:
            continue
        taken += 1
        parsed = INGESTOR.prepare(dataset, orjson.loads(body))
        assert [(r.key, r.headers, orjson.loads(r.value)) for r in raw.records] == [
            (r.key, r.headers, orjson.loads(r.value)) for r in parsed.records
        ], doc
    assert taken > 5000  # not vacuous
