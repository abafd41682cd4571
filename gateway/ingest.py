"""From a request to the Kafka records it stands for, with every check the API makes.

Pure: no I/O. The checks run in the reference's order (envelope schema, dataset, entry topic),
then ours: batch allowed, batch size, each event against its dataset's schema. A request is
all-or-nothing: nothing is published when any of its events is invalid.

Two paths. ``prepare_raw`` takes the request's bytes and, where the dataset's schema is compiled
(``ingest_core.event_types``), checks the envelope and each event in msgspec and forwards each
event's JSON as it came: no Python objects for the events, no serialising them again (a 100-event
request: ~265 -> ~150 µs). Whatever it cannot accept for certain, it leaves to ``prepare``, which
parses the request with orjson, decides, and words any error: so both paths accept the same
requests (see README, "Events are forwarded as sent"), and every error comes from one place.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal, NamedTuple

import msgspec

from gateway.errors import DatasetNotFound, InvalidInput, TopicNotDefined
from ingest_core.paths import schema_path
from ingest_core.record import (
    MAX_EVENT_DEPTH,
    EventTooDeep,
    OutRecord,
    build_raw_records,
    build_records,
    holds_nul,
    may_nest_too_deeply,
    reads_alike,
)
from ingest_core.record import may_hold_nul as bytes_may_hold_nul
from ingest_core.registry import Registry
from ingest_core.validation import SchemaValidator


class Prepared(NamedTuple):  # a NamedTuple: a frozen dataclass costs ~1 µs more per request
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
    def __init__(self, registry: Registry, max_batch_events: int) -> None:
        self._registry = registry
        self._max_batch = max_batch_events
        self._envelope = SchemaValidator(json.loads(schema_path("envelope.json").read_text("utf-8")))

    def prepare_raw(self, dataset_id: str, body: bytes) -> Prepared | None:
        """``prepare`` for a request's bytes, when they can be accepted without parsing the events
        into Python; None for anything else, which ``prepare`` must then decide. Never raises."""
        dataset = self._registry.get(dataset_id)
        if dataset is None or dataset.entry_topic is None or dataset.event_type is None:
            return None
        if bytes_may_hold_nul(body) or not _valid_utf8(body):
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
            if isinstance(envelope, _Batch):
                batch, events = True, envelope.data
                if len(events) > self._max_batch:
                    return None
            else:
                # Anything but an object is refused by the event's type below.
                batch, events = False, [envelope.data]
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
        records = build_raw_records(dataset.id, msgid, events, keys, dedups, batch, int(time.time() * 1000))
        return Prepared(dataset=dataset.id, topic=dataset.entry_topic, records=records, msgid=msgid)

    def prepare(self, dataset_id: str, doc: Any, may_hold_nul: bool = True) -> Prepared:
        """Check a parsed request and build its records.

        ``may_hold_nul``: False when the request's bytes hold no ``\\u0000``, which spares looking
        for U+0000 in its strings. Raises InvalidInput, DatasetNotFound or TopicNotDefined.
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
        return Prepared(dataset=dataset.id, topic=dataset.entry_topic, records=records, msgid=msgid)
