"""From a request to the Kafka records it stands for, with every check the API makes.

Pure: no I/O. The checks run in the reference's order (envelope schema, dataset, entry topic),
then ours: batch allowed, batch size, each event against its dataset's schema, each record's size.
A request is all-or-nothing: nothing is published when any of its events is invalid, or too large
for Kafka (the client refuses such a record only when it comes to it, after those before it).

Two paths. ``prepare_raw`` takes the request's bytes and, where the dataset's schema is compiled
(``ingest_core.event_types``), checks the envelope and each event in msgspec and forwards each
event's JSON as it came: no Python objects for the events, no serialising them again. Whatever
it cannot accept for certain, it leaves to ``prepare``, which
parses the request with orjson, decides, and words any error: so both paths accept the same
requests (docs/semantics.md, "Events are forwarded as sent"), and every error comes from one
place.
"""

from __future__ import annotations

import json
import operator
import time
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import orjson

from ingest_core.errors import DatasetNotFound, IngestError, InvalidInput, PayloadTooLarge, TopicNotDefined
from ingest_core.event_types import EventType
from ingest_core.paths import schema_path
from ingest_core.publish.base import DEFAULT_MAX_RECORD_BYTES
from ingest_core.record import (
    MAX_EVENT_DEPTH,
    EventTooDeep,
    OutRecord,
    build_raw_record,
    build_raw_records,
    build_records,
    holds_nul,
    may_nest_too_deeply,
    reads_alike,
)
from ingest_core.record import may_hold_nul as bytes_may_hold_nul
from ingest_core.registry import Dataset, Registry
from ingest_core.validation import SchemaValidator


class Prepared(NamedTuple):  # a NamedTuple: a frozen dataclass costs more per request
    dataset: str
    topic: str
    records: list[OutRecord]
    msgid: str


class _Params(msgspec.Struct, forbid_unknown_fields=True):
    msgid: Annotated[str, msgspec.Meta(min_length=1)]


class _Single(msgspec.Struct):
    """``schemas/envelope.json`` with one event, kept raw (unknown keys ignored, as the schema allows)."""

    id: Literal["api.data.in"]
    ver: str
    ts: str
    params: _Params
    data: msgspec.Raw


class _Batch(msgspec.Struct):
    """The same with a batch of events, each kept raw."""

    id: Literal["api.data.in"]
    ver: str
    ts: str
    params: _Params
    data: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1)]


# A record as Kafka clients count it against their limit: its key, value and headers plus framing.
# librdkafka adds at most 36 bytes (rd_kafka_msg_max_wire_size), aiokafka up to ~100 (a batch's
# header and a record's varints): these bounds are above both, so a record within the limit here is
# never refused by the client.
_RECORD_FRAMING = 128
_HEADER_FRAMING = 10  # two varint lengths
# On the raw path a record is made of parts of the request (the event, the key within it, the msgid
# four times, the dataset id of at most 128 characters twice) and ~400 bytes of its own: at most
# 6 x the body + ~700 bytes. The records of a body under an eighth of the limit, less 1 KiB, are
# not even looked at (at the default limit, bodies up to ~125 KB).
_RAW_SHARE = 8
_RAW_SLACK = 1024


def record_size(record: OutRecord) -> int:
    """An upper bound on the size Kafka clients count for ``record`` (see _RECORD_FRAMING)."""
    key, value, headers = record
    size = _RECORD_FRAMING + len(key) + len(value)
    for name, data in headers:
        size += (
            _HEADER_FRAMING
            + len(name.encode())
            + len(data.encode() if isinstance(data, str) else data or b"")
        )
    return size


# Every part of a record but the framing is at most its value's size: the key is a field of the event
# and the headers' values (dataset id, event id, msgid) are all written in the value too. So a record
# whose value is within a sixth of the limit is within the limit, with room to spare.
_VALUE_SHARE = 6
_value_of = operator.itemgetter(1)


def first_too_large(records: list[OutRecord], limit: int) -> tuple[int, int] | None:
    """The index and size of the first record over ``limit``, if any."""
    # Measuring every record costs far more than finding the largest value.
    if max(map(len, map(_value_of, records)), default=0) * _VALUE_SHARE + _RECORD_FRAMING <= limit:
        return None
    for i, record in enumerate(records):
        size = record_size(record)
        if size > limit:
            return i, size
    return None


_decode_single = msgspec.json.Decoder(_Single).decode
_decode_batch = msgspec.json.Decoder(_Batch).decode


def _looks_like_batch(body: bytes) -> bool:
    at = body.find(b'"data"')
    return at >= 0 and body[at + 6 : at + 24].lstrip(b" \t\r\n:")[:1] == b"["


def _valid_utf8(body: bytes) -> bool:
    # msgspec checks the UTF-8 of the strings it decodes, not of what it skips or keeps raw.
    if body.isascii():
        return True
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


# Numbers of more than MAX_NUMBER_DIGITS digits are refused: beyond 64-bit integers and doubles,
# most consumers' JSON parsers fail on them or round them. A run of that many digits anywhere in a
# body (a cheap test: in strings too) sends it to the exact check of the slow path.
MAX_NUMBER_DIGITS = 64
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_DIGIT_RUN = b"0" * (MAX_NUMBER_DIGITS + 1)
_HUGE = 10**MAX_NUMBER_DIGITS


def may_hold_long_number(body: bytes) -> bool:
    return _DIGIT_RUN in body.translate(_DIGITS_AS_ZERO)


def holds_long_number(body: bytes) -> bool:
    """Does the JSON document ``body`` hold a number of more than MAX_NUMBER_DIGITS digits?"""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        return "out of range" in str(exc)  # beyond what even msgspec's integers hold
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _HUGE:
            return True
    return False


def msgid_of(doc: Any) -> str | None:
    """The request's msgid, for echoing in any response, when it has a string one."""
    if isinstance(doc, dict):
        params = doc.get("params")
        if isinstance(params, dict):
            msgid = params.get("msgid")
            if isinstance(msgid, str):
                return msgid
    return None


class Ingestor:
    def __init__(
        self, registry: Registry, max_batch_events: int, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> None:
        self._registry = registry
        self._max_batch = max_batch_events
        self._max_record = max_record_bytes  # KAFKA_MAX_RECORD_BYTES: the producers are given it too
        self._envelope = SchemaValidator(json.loads(schema_path("envelope.json").read_text("utf-8")))

    def prepare_body(self, dataset_id: str, body: bytes) -> Prepared:
        """A request's records from its bytes: on the raw path where it takes them, else parsed
        with orjson and checked by ``prepare``. Raises what ``prepare`` raises, with the request's
        msgid when it has one, for echoing in the answer."""
        prepared = self.prepare_raw(dataset_id, body)
        if prepared is not None:
            return prepared
        if may_hold_long_number(body) and holds_long_number(body):
            raise InvalidInput(
                f"A number is out of range (more than {MAX_NUMBER_DIGITS} digits): send it as a string"
            )
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            # orjson's words name what is wrong and where (never the body's content).
            raise InvalidInput(f"Request body is not valid JSON: {exc}") from None
        try:
            return self.prepare(dataset_id, doc, bytes_may_hold_nul(body))
        except IngestError as error:
            error.msgid = msgid_of(doc)
            raise

    def prepare_raw(self, dataset_id: str, body: bytes) -> Prepared | None:
        """``prepare`` for a request's bytes, when they can be accepted without parsing the events
        into Python; None for anything else, which ``prepare`` must then decide. Never raises."""
        dataset = self._registry.get(dataset_id)
        if dataset is None or dataset.entry_topic is None or dataset.event_type is None:
            return None
        if bytes_may_hold_nul(body) or not _valid_utf8(body) or may_hold_long_number(body):
            return None
        event_type = dataset.event_type
        try:
            envelope: _Single | _Batch | None = None
            # A guess, to try the right decoder first; the other is tried when it is wrong.
            if dataset.batch and _looks_like_batch(body):
                try:
                    envelope = _decode_batch(body)
                except msgspec.ValidationError:
                    pass
            if envelope is None:
                envelope = _decode_single(body)
            if isinstance(envelope, _Single):
                return self._prepare_single(dataset, dataset.entry_topic, event_type, envelope, len(body))
            events = envelope.data
            if len(events) > self._max_batch:
                return None
            decoded = []
            for event in events:
                if may_nest_too_deeply(event):
                    return None
                decoded.append(event_type.decode(event))
        except (msgspec.DecodeError, RecursionError):
            return None
        field = event_type.field
        keys = None if dataset.key is None else [field(e, dataset.key) for e in decoded]
        dedups = None if dataset.dedup_key is None else [field(e, dataset.dedup_key) for e in decoded]
        for values in (keys, dedups):
            if values is not None and not all(map(reads_alike, values)):
                return None
        msgid = envelope.params.msgid
        records = build_raw_records(dataset.id, msgid, events, keys, dedups, int(time.time() * 1000))
        if len(body) * _RAW_SHARE + _RAW_SLACK >= self._max_record and first_too_large(
            records, self._max_record
        ):
            return None  # prepare words the error
        return Prepared(dataset=dataset.id, topic=dataset.entry_topic, records=records, msgid=msgid)

    def _prepare_single(
        self, dataset: Dataset, topic: str, event_type: EventType, envelope: _Single, size: int
    ) -> Prepared | None:
        """``prepare_raw`` of a request of one event, without the lists and loops of a batch's.
        Raises what msgspec raises for an event it refuses."""
        event = envelope.data
        if may_nest_too_deeply(event):
            return None
        # Anything but an object is refused by the event's type.
        decoded = event_type.decode(event)
        key = None if dataset.key is None else event_type.field(decoded, dataset.key)
        dedup = None if dataset.dedup_key is None else event_type.field(decoded, dataset.dedup_key)
        if not (reads_alike(key) and reads_alike(dedup)):
            return None
        msgid = envelope.params.msgid
        record = build_raw_record(dataset.id, msgid, event, key, dedup, int(time.time() * 1000))
        if size * _RAW_SHARE + _RAW_SLACK >= self._max_record and record_size(record) > self._max_record:
            return None  # prepare words the error
        return Prepared(dataset.id, topic, [record], msgid)

    def prepare(self, dataset_id: str, doc: Any, may_hold_nul: bool = True) -> Prepared:
        """Check a parsed request and build its records.

        ``may_hold_nul``: False when the request's bytes hold no ``\\u0000``, which spares looking
        for U+0000 in its strings. Raises InvalidInput, DatasetNotFound, TopicNotDefined or
        PayloadTooLarge (an event whose record is over the producers' limit).
        """
        problem = self._envelope.first_error(doc)
        if problem is not None:
            raise InvalidInput(problem)
        dataset = self._registry.get(dataset_id)
        if dataset is None:
            raise DatasetNotFound()
        if dataset.entry_topic is None:
            raise TopicNotDefined()
        data = doc["data"]
        msgid: str = doc["params"]["msgid"]
        batch = isinstance(data, list)
        if batch and not dataset.batch:
            raise InvalidInput(
                "#properties/data/type should be object (this dataset takes one event per request)"
            )
        if batch and len(data) > self._max_batch:
            raise InvalidInput(f"#properties/data/maxItems should NOT have more than {self._max_batch} items")
        events: list[dict[str, Any]] = data if batch else [data]
        validator = dataset.validator
        if validator is not None:
            for i, event in enumerate(events):
                problem = validator.first_error(event)
                if problem is not None:
                    where = f"data[{i}]" if batch else "data"
                    raise InvalidInput(f"{where}: {problem}")
        if may_hold_nul:
            if holds_nul(msgid):
                raise InvalidInput("params.msgid: holds the character U+0000, which cannot be stored")
            for i, event in enumerate(events):
                if holds_nul(event):
                    where = f"data[{i}]" if batch else "data"
                    raise InvalidInput(
                        f"{where}: a string holds the character U+0000, which cannot be stored"
                    )
        try:
            records = build_records(
                dataset.id, msgid, events, batch, dataset.key, dataset.dedup_key, int(time.time() * 1000)
            )
        except EventTooDeep as exc:
            where = f"data[{exc.index}]" if batch else "data"
            raise InvalidInput(
                f"{where}: nested too deeply (objects and arrays at most {MAX_EVENT_DEPTH} levels deep)"
            ) from None
        too_large = first_too_large(records, self._max_record)
        if too_large is not None:
            index, size = too_large
            where = f"data[{index}]" if batch else "data"
            raise PayloadTooLarge(
                f"{where}: too large for Kafka: its record would take {size:,} bytes, "
                f"at most {self._max_record:,} are taken"
            )
        return Prepared(dataset=dataset.id, topic=dataset.entry_topic, records=records, msgid=msgid)
