"""From a parsed request to the Kafka records it stands for, with every check the API makes.

Pure: no I/O. The checks run in the reference's order (envelope schema, dataset, entry topic),
then ours: batch allowed, batch size, each event against its dataset's schema. A request is
all-or-nothing: nothing is published when any of its events is invalid.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

from gateway.errors import DatasetNotFound, InvalidInput, TopicNotDefined
from ingest_core.paths import schema_path
from ingest_core.record import MAX_EVENT_DEPTH, EventTooDeep, OutRecord, build_records, holds_nul
from ingest_core.registry import Registry
from ingest_core.validation import SchemaValidator


class Prepared(NamedTuple):  # a NamedTuple: a frozen dataclass costs ~1 µs more per request
    dataset: str
    topic: str
    records: list[OutRecord]


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
        return Prepared(dataset=dataset.id, topic=dataset.entry_topic, records=records)
