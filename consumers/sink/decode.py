"""Pure: one Kafka record -> a row to persist, or the reason it must be dead-lettered.

Checks, in order: the value is JSON; it matches the record schema (``schemas/record.json``); its
dataset is registered and uses this topic; its event matches the dataset's schema. The event id is
the dataset's ``dedup_key`` value when there is one, else the record's ``event_id`` — the same rule
the gateway applies, so both agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from ingest_core.paths import schema_path
from ingest_core.record import dedup_value
from ingest_core.registry import Registry
from ingest_core.store import Row
from ingest_core.validation import SchemaValidator


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # bounded: a metric label
    error: str  # for the dead-letter header


class Decoder:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._record = SchemaValidator(json.loads(schema_path("record.json").read_text("utf-8")))

    def decode(self, topic: str, partition: int, offset: int, value: bytes | None) -> Row | Rejected:
        if value is None:
            return Rejected("not_json", "record has no value")
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return Rejected("not_json", "value is not valid JSON")
        problem = self._record.first_error(doc)
        if problem is not None:
            return Rejected("bad_record", f"record: {problem}")
        dataset = self._registry.get(doc["dataset"])
        if dataset is None:
            return Rejected("unknown_dataset", f"unknown dataset {doc['dataset'][:128]!r}")
        if dataset.entry_topic != topic:
            return Rejected("wrong_topic", f"dataset {dataset.id!r} does not use topic {topic!r}")
        event = doc["event"]
        if dataset.validator is not None:
            problem = dataset.validator.first_error(event)
            if problem is not None:
                return Rejected("schema", f"event: {problem}")
        return Row(
            dataset=dataset.id,
            event_id=dedup_value(event, dataset.dedup_key) or doc["event_id"],
            msgid=doc["msgid"],
            event_json=orjson.dumps(event).decode(),
            topic=topic,
            partition=partition,
            offset=offset,
            received_at=datetime.fromtimestamp(doc["obsrv_meta"]["syncts"] / 1000, tz=UTC),
        )
