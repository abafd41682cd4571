"""The Kafka record format of an ingested event: one record per event, shared by every producer.

Value (JSON, ``schemas/record.json``)::

    {"dataset": ..., "msgid": ..., "event_id": ..., "event": {...},
     "obsrv_meta": {"syncts": <epoch ms>, "source": {"connector": "api", "connectorInstance": "api"}}}

Key: the dataset's ``key`` field of the event when present and scalar, else the msgid.
Headers: ``dataset``, ``event_id`` and ``msgid`` (UTF-8).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import orjson

HEADER_DATASET = "dataset"
HEADER_EVENT_ID = "event_id"
HEADER_MSGID = "msgid"

_SCALARS = (str, int, float, bool)


def scalar_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _SCALARS):
        return str(value)
    return None


# orjson reads an integer beyond 64 bits as a float (its text then changes: 2**70 becomes
# 1.1805916207174113e+21), msgspec reads it exactly. Where such an integer is a key or a dedup key,
# the compiled paths leave the event to the general one, so that both derive the same text.
_INT_RANGE = range(-(2**63), 2**64)


def reads_alike(value: Any) -> bool:
    """Whether orjson and msgspec read this scalar the same."""
    return type(value) is not int or value in _INT_RANGE


def dedup_value(event: dict[str, Any], dedup_key: str | None) -> str | None:
    """The event's ``dedup_key`` field as text, when the dataset has one and the field is scalar."""
    return None if dedup_key is None else scalar_text(event.get(dedup_key))


def event_id_for(msgid: str, index: int | None, event: dict[str, Any], dedup_key: str | None) -> str:
    """The event's id: its ``dedup_key`` value (see ``dedup_value``), else ``<msgid>`` or ``<msgid>:<n>``.

    The gateway calls this and the sink calls ``dedup_value``, so they always agree.
    """
    value = dedup_value(event, dedup_key)
    if value is not None:
        return value
    return msgid if index is None else f"{msgid}:{index}"


# The JSON escape of U+0000. PostgreSQL's text and jsonb cannot hold that character, so no record
# holding it in a stored field is accepted, whatever the store. Raw control characters are invalid
# in JSON strings: the escape is the only way in, and cheap to look for in the bytes first.
NUL_ESCAPE = b"\\u0000"


def may_hold_nul(json_bytes: bytes) -> bool:
    """Whether JSON bytes may hold U+0000: whether they hold its escape.

    A backslash is looked for first: most JSON has none, and memchr finds one byte (or its absence)
    far faster than the six-byte escape is searched for.
    """
    first = json_bytes.find(b"\\")
    return first >= 0 and json_bytes.find(NUL_ESCAPE, first) >= 0


def holds_nul(value: Any) -> bool:
    """Whether any string in ``value``, object keys included, holds U+0000.

    Iterative: values come nested up to 1,024 levels deep, beyond Python's recursion limit.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return True
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    return False


# How deeply an event may nest objects and arrays: orjson serialises at most 254 levels, and the
# record's own object is one of them. ``build_value`` raises orjson.JSONEncodeError beyond it.
MAX_EVENT_DEPTH = 253


def may_nest_too_deeply(json_text: bytes | msgspec.Raw) -> bool:
    """Whether JSON text may nest objects and arrays deeper than MAX_EVENT_DEPTH.

    Nesting n levels takes 2n bytes at least, so the length alone clears nearly every event; the
    rest are counted, brackets in strings included: an overestimate, which only sends the event to
    the path that serialises it, where the limit is applied exactly.
    """
    if len(json_text) <= 2 * MAX_EVENT_DEPTH:
        return False
    text = bytes(json_text)
    return text.count(b"{") + text.count(b"[") > MAX_EVENT_DEPTH


# The source block is the same for every record from the HTTP API: serialised once.
_API_SOURCE = {"connector": "api", "connectorInstance": "api"}
_API_TAIL = b',"obsrv_meta":{"syncts":%d,"source":' + orjson.dumps(_API_SOURCE) + b"}}"


def build_value(dataset: str, msgid: str, event_id: str, event: dict[str, Any], syncts_ms: int) -> bytes:
    return orjson.dumps(
        {
            "dataset": dataset,
            "msgid": msgid,
            "event_id": event_id,
            "event": event,
            "obsrv_meta": {"syncts": syncts_ms, "source": _API_SOURCE},
        }
    )


class OutRecord(NamedTuple):
    """One Kafka record to produce. A NamedTuple: one is built per event on the gateway's hot path."""

    key: bytes
    value: bytes
    headers: list[tuple[str, str | bytes | None]]


class EventTooDeep(ValueError):
    """The event at ``index`` nests deeper than MAX_EVENT_DEPTH: its record cannot be serialised."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


_dumps = orjson.dumps
_new_record = tuple.__new__


def build_records(
    dataset: str, msgid: str, events: Sequence[dict[str, Any]], indexed: bool, key_field: str | None,
    dedup_key: str | None, syncts_ms: int,
) -> list[OutRecord]:  # fmt: skip
    """The records of one request's events, in order: the value ``build_value`` makes, the key and
    the headers described above. ``indexed``: the events came as a batch, so ids are ``<msgid>:<n>``.

    One loop for the whole request, what its records share made once, and no call per record that
    can be spared. Raises EventTooDeep.
    """
    meta = {"syncts": syncts_ms, "source": _API_SOURCE}
    dataset_header, msgid_header = (HEADER_DATASET, dataset.encode()), (HEADER_MSGID, msgid.encode())
    msgid_key = msgid.encode()
    records = []
    for i, event in enumerate(events):
        if dedup_key is None:
            event_id = f"{msgid}:{i}" if indexed else msgid
        else:
            event_id = event_id_for(msgid, i if indexed else None, event, dedup_key)
        try:
            value = _dumps(
                {"dataset": dataset, "msgid": msgid, "event_id": event_id, "event": event, "obsrv_meta": meta}
            )
        except orjson.JSONEncodeError:
            # The one thing serialising a parsed event can refuse: orjson's nesting limit.
            raise EventTooDeep(i) from None
        key = msgid_key
        if key_field is not None:
            text = scalar_text(event.get(key_field))
            if text is not None:
                key = text.encode()
        headers = [dataset_header, (HEADER_EVENT_ID, event_id.encode()), msgid_header]
        # The same tuple as OutRecord(...) without the NamedTuple's Python-level __new__.
        records.append(_new_record(OutRecord, (key, value, headers)))
    return records


@functools.lru_cache(maxsize=1024)
def _dataset_framing(dataset: str) -> tuple[bytes, tuple[str, bytes]]:
    """What every record of ``dataset`` starts with (``{"dataset":<id>,"msgid":``), and its dataset
    header: made once per dataset rather than per request."""
    return b'{"dataset":%b,"msgid":' % _dumps(dataset), (HEADER_DATASET, dataset.encode())


def build_raw_value(
    dataset: str, msgid: str, event_id: str, event: bytes | msgspec.Raw, syncts_ms: int
) -> bytes:
    """``build_value`` of an event kept as the JSON it came in (checked, not parsed): that JSON set
    into the record as it is; byte for byte ``build_value``'s when the JSON is as orjson writes it."""
    opening, _header = _dataset_framing(dataset)
    return b"".join(
        (
            opening,
            _dumps(msgid),
            b',"event_id":',
            _dumps(event_id),
            b',"event":',
            event,
            _API_TAIL % syncts_ms,
        )
    )


def build_raw_record(
    dataset: str, msgid: str, event: msgspec.Raw, key: Any, dedup: Any, syncts_ms: int
) -> OutRecord:
    """``build_raw_records`` of a request of one event (not a batch): the same record, without the
    loop and what a batch's records share."""
    opening, dataset_header = _dataset_framing(dataset)
    msgid_json = _dumps(msgid)
    msgid_bytes = msgid.encode()
    dedup_text = scalar_text(dedup)
    if dedup_text is None:
        event_id, id_json = msgid_bytes, msgid_json
    else:
        event_id, id_json = dedup_text.encode(), _dumps(dedup_text)
    value = b"".join(
        (opening, msgid_json, b',"event_id":', id_json, b',"event":', event, _API_TAIL % syncts_ms)
    )
    key_text = scalar_text(key)
    headers = [dataset_header, (HEADER_EVENT_ID, event_id), (HEADER_MSGID, msgid_bytes)]
    return _new_record(OutRecord, (msgid_bytes if key_text is None else key_text.encode(), value, headers))


def build_raw_records(
    dataset: str, msgid: str, events: Sequence[msgspec.Raw], keys: Sequence[Any] | None,
    dedups: Sequence[Any] | None, syncts_ms: int,
) -> list[OutRecord]:  # fmt: skip
    """``build_records`` for a batch of events kept as the JSON they came in (checked, not parsed):
    each value is that JSON set into the record's own, byte for byte what ``build_value`` makes of
    the parsed event when the event's JSON is as orjson writes it. (One event sent as ``data``
    itself, not in a list: ``build_raw_record``.)

    ``keys`` and ``dedups``: each event's ``key`` and ``dedup_key`` field (None or UNSET where
    absent), or None when the dataset has no such field.
    """
    opening, dataset_header = _dataset_framing(dataset)
    msgid_json = _dumps(msgid)
    before_id = b'%b%b,"event_id":' % (opening, msgid_json)
    # The common id, <msgid>:<n>, is written into msgid's JSON string: digits need no escaping.
    before_index = before_id + msgid_json[:-1]
    tail = _API_TAIL % syncts_ms
    msgid_header = (HEADER_MSGID, msgid.encode())
    msgid_key = msgid_bytes = msgid.encode()
    records = []
    for i, event in enumerate(events):
        dedup = None if dedups is None else scalar_text(dedups[i])
        if dedup is not None:
            event_id = dedup.encode()
            value = b"".join((before_id, _dumps(dedup), b',"event":', event, tail))
        else:
            event_id = b"%s:%d" % (msgid_bytes, i)
            value = b"".join((before_index, b':%d","event":' % i, event, tail))
        key = msgid_key
        if keys is not None:
            text = scalar_text(keys[i])
            if text is not None:
                key = text.encode()
        headers = [dataset_header, (HEADER_EVENT_ID, event_id), msgid_header]
        records.append(_new_record(OutRecord, (key, value, headers)))
    return records
