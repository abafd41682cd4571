"""A request holding an event whose Kafka record is over KAFKA_MAX_RECORD_BYTES is refused whole,
naming the event, before anything is published; the size counted is never below what either Kafka
client counts against the same limit. (Against real Kafka: tests/integration/test_ingest_kafka.py.)"""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from confluent_kafka import KafkaException, Producer

from ingest_core.errors import PayloadTooLarge
from ingest_core.prepare import Ingestor, record_size
from ingest_core.record import OutRecord
from ingest_core.registry import parse_registry
from tests.support.gateway import EXAMPLE_SCHEMA, envelope

LIMIT = 4096
REGISTRY = parse_registry(
    {
        "datasets": [
            {"id": "example", "entry_topic": "t.example", "schema": str(EXAMPLE_SCHEMA), "key": "eid"}
        ]
    },
    Path("/virtual/topics.yaml"),
)
INGESTOR = Ingestor(REGISTRY, max_batch_events=5, max_record_bytes=LIMIT)
INGESTOR_UNLIMITED = Ingestor(REGISTRY, max_batch_events=5, max_record_bytes=10**9)


def _event(pad: int) -> dict[str, str]:
    return {"eid": "E", "pad": "x" * pad}


def test_a_batch_with_one_event_too_large_is_refused_whole_naming_it() -> None:
    doc = envelope([_event(10), _event(5000), _event(10)], msgid="m")
    with pytest.raises(PayloadTooLarge) as caught:
        INGESTOR.prepare("example", doc)
    size = record_size(INGESTOR_UNLIMITED.prepare("example", doc).records[1])
    assert (
        str(caught.value)
        == f"data[1]: too large for Kafka: its record would take {size:,} bytes, at most 4,096 are taken"
    )
    # The raw path leaves it to the parsed one, which words the error.
    assert INGESTOR.prepare_raw("example", orjson.dumps(doc)) is None


def test_a_single_event_too_large_is_named_data() -> None:
    with pytest.raises(PayloadTooLarge, match=r"^data: too large for Kafka"):
        INGESTOR.prepare("example", envelope(_event(5000)))


def test_a_large_key_counts_too() -> None:
    # The dataset's key is the event's eid: the record holds it twice, in its value and as its key.
    doc = envelope([{"eid": "k" * 2100}], msgid="m")
    with pytest.raises(PayloadTooLarge, match=r"^data\[0\]: too large for Kafka"):
        INGESTOR.prepare("example", doc)
    assert len(INGESTOR_UNLIMITED.prepare("example", doc).records[0].value) < LIMIT * 3 // 4


def test_records_up_to_the_limit_pass_on_both_paths() -> None:
    # Each character of padding adds a byte to the record: pad the second event up to the limit.
    unlimited = Ingestor(REGISTRY, 5, 10**9)
    smallest = record_size(
        unlimited.prepare("example", envelope([_event(10), _event(0)], msgid="m")).records[1]
    )
    doc = envelope([_event(10), _event(LIMIT - smallest)], msgid="m")
    assert record_size(INGESTOR.prepare("example", doc).records[1]) == LIMIT
    raw = INGESTOR.prepare_raw("example", orjson.dumps(doc))
    assert raw is not None
    assert record_size(raw.records[1]) == LIMIT


def test_a_single_event_up_to_the_limit_passes_on_both_paths_and_one_byte_more_is_left_to_prepare() -> None:
    unlimited = Ingestor(REGISTRY, 5, 10**9)
    smallest = record_size(unlimited.prepare("example", envelope(_event(0), msgid="m")).records[0])
    at_limit = envelope(_event(LIMIT - smallest), msgid="m")
    assert record_size(INGESTOR.prepare("example", at_limit).records[0]) == LIMIT
    raw = INGESTOR.prepare_raw("example", orjson.dumps(at_limit))
    assert raw is not None
    assert record_size(raw.records[0]) == LIMIT
    over = envelope(_event(LIMIT - smallest + 1), msgid="m")
    assert INGESTOR.prepare_raw("example", orjson.dumps(over)) is None
    with pytest.raises(PayloadTooLarge, match=r"^data: too large for Kafka"):
        INGESTOR.prepare("example", over)


def _records() -> list[OutRecord]:
    headers: list[tuple[str, str | bytes | None]] = [
        ("dataset", b"example"), ("event_id", b"m:12345"), ("msgid", b"m")
    ]  # fmt: skip
    return [
        OutRecord(key=b"", value=b"v" * 3000, headers=[]),
        OutRecord(key=b"k" * 200, value=b"v" * 3000, headers=headers),
        # Header values as text, or none at all, as Kafka allows.
        OutRecord(key=b"E", value=b"\xff" * 1000, headers=[*headers, ("text", "é" * 50), ("empty", None)]),
    ]


def _as_bytes(headers: list[tuple[str, str | bytes | None]]) -> list[tuple[str, bytes | None]]:
    """aiokafka takes header values as bytes only (the gateway's records have bytes)."""
    return [(name, data.encode() if isinstance(data, str) else data) for name, data in headers]


def test_the_count_is_never_below_aiokafkas() -> None:
    for record in _records():
        key, value, headers = record
        assert DefaultRecordBatchBuilder.estimate_size_in_bytes(
            key, value, _as_bytes(headers)
        ) <= record_size(record)


def test_the_count_is_never_below_librdkafkas() -> None:
    with socket.socket() as s:  # nothing listens there: produce() only counts and queues
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    for record in _records():
        key, value, headers = record
        at_the_limit = Producer({"bootstrap.servers": nowhere, "message.max.bytes": record_size(record)})
        at_the_limit.produce("t", value, key, headers=headers)  # accepted: librdkafka counts no more
        at_the_limit.purge()
        # And the limit is applied: below the record's bare bytes, it is refused.
        bare = len(key) + len(value) + sum(len(n) + len(d or b"") for n, d in _as_bytes(headers))
        below = Producer({"bootstrap.servers": nowhere, "message.max.bytes": bare - 1})
        with pytest.raises(KafkaException, match="MSG_SIZE_TOO_LARGE"):
            below.produce("t", value, key, headers=headers)
