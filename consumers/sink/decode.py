"""Pure: one Kafka record -> a row to persist, or the reason it must be dead-lettered.

Checks, in order: the value is JSON; it matches the record schema (``schemas/record.json``); its
dataset is registered and uses this topic; its event matches the dataset's schema. The event id is
the dataset's ``dedup_key`` value when there is one, else the record's ``event_id`` — the same rule
the gateway applies, so both agree.

The hot path decodes the record's envelope with msgspec into a typed struct whose ``event`` stays
raw JSON: the envelope's fields are checked in C, and the event is stored as the very text it had
in the record, so it is never serialised again. Where the dataset's schema is compiled
(``ingest_core.event_types``) the event is checked by that type without being parsed into Python,
as the gateway checks it (the figures of both: bench/NOTES.md);
else it is parsed once, for its schema. Whatever either refuses takes the general path, where the
schemas decide and word the error, so the fast path can never reject a valid record; the contract
tests check that it accepts nothing the record schema rejects, and the unit tests that every record
gets the general path's verdict.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import msgspec
import orjson

from ingest_core.paths import schema_path
from ingest_core.record import (
    MAX_EVENT_DEPTH,
    dedup_value,
    holds_nul,
    may_hold_nul,
    may_nest_too_deeply,
    reads_alike,
    scalar_text,
)
from ingest_core.registry import Dataset, Registry
from ingest_core.store import Row
from ingest_core.validation import SchemaValidator

log = logging.getLogger(__name__)

# The record schema's bound: the last millisecond of year 9999, the latest a timestamp column holds.
MAX_SYNCTS_MS = 253_402_300_799_999

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _Source(msgspec.Struct):
    # UNSET rather than None: the schema allows the keys to be absent, never null.
    connector: str | msgspec.UnsetType = msgspec.UNSET
    connectorInstance: str | msgspec.UnsetType = msgspec.UNSET  # camelCase: the wire name


class _Meta(msgspec.Struct):
    syncts: Annotated[int, msgspec.Meta(ge=0, le=MAX_SYNCTS_MS)]
    source: _Source | msgspec.UnsetType = msgspec.UNSET


class FastRecord(msgspec.Struct):
    """``schemas/record.json`` as a struct (unknown keys ignored, as the schema allows them)."""

    dataset: _NonEmpty
    msgid: _NonEmpty
    event_id: _NonEmpty
    event: msgspec.Raw
    obsrv_meta: _Meta


_fast_decoder = msgspec.json.Decoder(FastRecord)
_new_row = tuple.__new__
# An event this long or shorter cannot nest deeper than the gateway accepts (see may_nest_too_deeply).
_SHALLOW_BYTES = 2 * MAX_EVENT_DEPTH


def fast_record(value: bytes) -> tuple[FastRecord, bytes] | None:
    """The record and its event's JSON, when the value is certainly a valid record whose event is
    an object no deeper than the gateway accepts; else None. The event itself is not checked."""
    try:
        record = _fast_decoder.decode(value)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        # RecursionError: msgspec gives up on ~1,000 levels of nesting, even inside ``event``.
        return None
    # msgspec hands over the value's own bytes, without surrounding whitespace.
    raw = bytes(record.event)
    # An event that may nest deeper than the gateway accepts goes to the general path, which
    # applies that limit: so one rule holds whichever path a record takes (the gateway's too).
    if raw[:1] != b"{" or (len(raw) > _SHALLOW_BYTES and may_nest_too_deeply(raw)):
        return None
    return record, raw


def _stored_fields_hold_nul(value: bytes) -> bool:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False  # not JSON: the decoder says so
    return isinstance(doc, dict) and holds_nul(
        [doc.get(k) for k in ("dataset", "msgid", "event_id", "event")]
    )


class KafkaRecord(Protocol):
    """What the decoder reads of a consumed record (a ``confluent_kafka.Message`` is one)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...


class _Record:
    """One record given by its parts, for ``decode``."""

    __slots__ = ("_offset", "_partition", "_topic", "_value")

    def __init__(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        self._topic, self._partition, self._offset, self._value = topic, partition, offset, value

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # bounded: a metric label
    error: str  # for the dead-letter header


def _broken(msg: KafkaRecord, exc: Exception) -> Rejected:
    # A record that breaks the decoder must not stop the sink (it would break it again on every
    # restart): it is set aside with the rest, and the bug is logged.
    log.error(
        "record %s[%s]@%s could not be decoded", msg.topic(), msg.partition(), msg.offset(), exc_info=exc
    )
    return Rejected("internal", f"the sink could not decode this record: {type(exc).__name__}")


class Decoder:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._record = SchemaValidator(json.loads(schema_path("record.json").read_text("utf-8")))
        self._received: dict[float, datetime] = {}  # syncts -> received_at, see _row

    def _receive(self, syncts: float) -> datetime:
        if len(self._received) >= 4096:
            self._received.clear()
        at = self._received[syncts] = datetime.fromtimestamp(syncts / 1000, tz=UTC)
        return at

    def decode_all(self, records: Sequence[KafkaRecord]) -> tuple[list[Row], list[tuple[int, Rejected]]]:
        """Each record's row, in order, and each refused record's index and reason.

        The common record (as the gateway writes it, for a dataset with a compiled type) is decoded
        by ``_compiled_row`` in one frame (a call costs as much as some of the checks); whatever it
        declines, ``_decode_other`` decides.
        """
        rows: list[Row] = []
        refused: list[tuple[int, Rejected]] = []
        compiled_row = self._compiled_row
        for index, msg in enumerate(records):
            try:
                row = compiled_row(msg)
                if row is None:
                    out = self._decode_other(
                        msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.value()
                    )
                    if isinstance(out, Rejected):
                        refused.append((index, out))
                        continue
                    row = out
            except Exception as exc:  # noqa: BLE001 -- logged by _broken
                refused.append((index, _broken(msg, exc)))
                continue
            rows.append(row)
        return rows, refused

    def decode(self, topic: str, partition: int, offset: int, value: bytes | None) -> Row | Rejected:
        """One record's row, or why it is refused (``decode_all`` of that record alone)."""
        rows, refused = self.decode_all([_Record(topic, partition, offset, value)])
        return rows[0] if rows else refused[0][1]

    def _compiled_row(self, msg: KafkaRecord) -> Row | None:
        """The row, when the record is the gateway's for a dataset whose schema is compiled and the
        compiled checks accept it; else None (``_decode_other`` then decides, and words any error).

        It catches only what a declined record raises: a bug here is the caller's to report, never
        silently handed to the general path.
        """
        value = msg.value()
        # A NUL cannot be stored: _decode_other refuses such a record.
        if value is None or may_hold_nul(value):
            return None
        fast = fast_record(value)
        if fast is None:
            return None
        record, raw = fast
        topic = msg.topic()
        dataset = self._registry.records.get(record.dataset)
        if dataset is None or dataset.entry_topic != topic or dataset.event_type is None:
            return None
        # The dataset's compiled type checks the event without parsing it into Python (see
        # ingest_core.event_types); what it refuses, the general path decides and words.
        event_type = dataset.event_type
        try:
            checked = event_type.decode(raw)
            # msgspec checks the UTF-8 of the strings it reads, not of those it skips.
            text = raw.decode()
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None
        event_id = record.event_id
        if dataset.dedup_key is not None:
            dedup = event_type.field(checked, dataset.dedup_key)
            if not reads_alike(dedup):
                return None
            event_id = scalar_text(dedup) or event_id
        syncts = record.obsrv_meta.syncts
        # The events of one request share their syncts: each value is converted once.
        at = self._received.get(syncts) or self._receive(syncts)
        # The same tuple as Row(...) without the NamedTuple's Python-level __new__, which is slower.
        return _new_row(
            Row,
            (dataset.id, event_id, record.msgid, text, topic, msg.partition() or 0, msg.offset() or 0, at),
        )

    def _decode_other(self, topic: str, partition: int, offset: int, value: bytes | None) -> Row | Rejected:
        """What ``_compiled_row`` declined: parsed once for its dataset's schema, or by the general
        path when the fast decoders refuse it, so the schemas decide and word every error.

        Its first checks repeat ``_compiled_row``'s, for the few records it declines: passing their
        outcome along would cost every record more than repeating them costs these.
        """
        if value is None:
            return Rejected("not_json", "record has no value")
        if may_hold_nul(value) and _stored_fields_hold_nul(value):
            return Rejected(
                "bad_record", "record: a string holds the character U+0000, which cannot be stored"
            )
        fast = fast_record(value)
        if fast is None:
            return self._decode_general(topic, partition, offset, value)
        record, raw = fast
        dataset = self._registry.records.get(record.dataset)
        if dataset is not None and dataset.entry_topic == topic and dataset.event_type is not None:
            # The compiled type refused the event: the general path says why.
            return self._decode_general(topic, partition, offset, value)
        try:
            # orjson checks the event strictly (UTF-8 included), as on the general path.
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._decode_general(topic, partition, offset, value)
        # The event is checked by the dataset's schema in _row (or refused there for its dataset or
        # topic).
        return self._row(
            topic, partition, offset, record.dataset, record.msgid, record.event_id, event,
            raw.decode(), record.obsrv_meta.syncts,
        )  # fmt: skip

    def _decode_general(self, topic: str, partition: int, offset: int, value: bytes) -> Row | Rejected:
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            # The parser's reason (a position, or "depth limit exceeded") helps whoever replays it.
            return Rejected("not_json", f"value is not valid JSON: {exc}")
        problem = self._record.first_error(doc)
        if problem is not None:
            return Rejected("bad_record", f"record: {problem}")
        event = doc["event"]
        try:
            # Serialised inside a list, as deep as inside its record: orjson then refuses exactly
            # the events the gateway refuses (deeper than MAX_EVENT_DEPTH). "[" and "]" dropped.
            event_json = orjson.dumps([event])[1:-1].decode()
        except orjson.JSONEncodeError:
            return Rejected(
                "bad_record",
                f"event: nested too deeply (objects and arrays at most {MAX_EVENT_DEPTH} levels deep)",
            )
        return self._row(
            topic, partition, offset, doc["dataset"], doc["msgid"], doc["event_id"], event,
            event_json, doc["obsrv_meta"]["syncts"],
        )  # fmt: skip

    def _row(
        self, topic: str, partition: int, offset: int, dataset_id: str, msgid: str, event_id: str,
        event: dict[str, Any], event_json: str, syncts: float,
    ) -> Row | Rejected:  # fmt: skip
        dataset = self._registry.records.get(dataset_id)
        if dataset is None:
            return Rejected("unknown_dataset", f"unknown dataset {dataset_id[:128]!r}")
        if dataset.entry_topic != topic:
            return Rejected("wrong_topic", f"dataset {dataset.id!r} does not use topic {topic!r}")
        if dataset.validator is not None:
            problem = dataset.validator.first_error(event)
            if problem is not None:
                return Rejected("schema", f"event: {problem}")
        if dataset.dedup_key is not None:
            event_id = dedup_value(event, dataset.dedup_key) or event_id
        return self._checked_row(topic, partition, offset, dataset, msgid, event_id, event_json, syncts)

    def _checked_row(
        self, topic: str, partition: int, offset: int, dataset: Dataset, msgid: str, event_id: str,
        event_json: str, syncts: float,
    ) -> Row:  # fmt: skip
        # The events of one request share their syncts: each value is converted once.
        at = self._received.get(syncts) or self._receive(syncts)
        # The same tuple as Row(...) without the NamedTuple's Python-level __new__, which is slower.
        return _new_row(Row, (dataset.id, event_id, msgid, event_json, topic, partition, offset, at))
