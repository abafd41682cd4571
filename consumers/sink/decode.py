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
from typing import Any

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


def looks_like_record(doc: Any) -> bool:
    """``schemas/record.json``'s constraints checked directly: the hot path, ~5x cheaper than the
    compiled schema. When it says no, the schema decides (and words the error), so it can never
    reject a valid record; the contract tests check it accepts nothing the schema rejects.
    """
    if type(doc) is not dict:
        return False
    for name in ("dataset", "msgid", "event_id"):
        value = doc.get(name)
        if type(value) is not str or not value:
            return False
    meta = doc.get("obsrv_meta")
    if type(doc.get("event")) is not dict or type(meta) is not dict:
        return False
    syncts = meta.get("syncts")
    if type(syncts) is not int or syncts < 0:
        return False
    if "source" in meta:
        source = meta["source"]
        if type(source) is not dict:
            return False
        for name in ("connector", "connectorInstance"):
            if name in source and type(source[name]) is not str:
                return False
    return True


class Decoder:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._record = SchemaValidator(json.loads(schema_path("record.json").read_text("utf-8")))
        # The events of one request share their syncts: convert each value once.
        self._received: dict[float, datetime] = {}

    def _received_at(self, syncts: float) -> datetime:
        at = self._received.get(syncts)
        if at is None:
            if len(self._received) >= 4096:
                self._received.clear()
            at = self._received[syncts] = datetime.fromtimestamp(syncts / 1000, tz=UTC)
        return at

    def decode(self, topic: str, partition: int, offset: int, value: bytes | None) -> Row | Rejected:
        if value is None:
            return Rejected("not_json", "record has no value")
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return Rejected("not_json", "value is not valid JSON")
        if not looks_like_record(doc):
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
            received_at=self._received_at(doc["obsrv_meta"]["syncts"]),
        )
