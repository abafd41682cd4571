"""``POST /api/v1/source/import``: from a request's body to the records of its entries.

Pure: no I/O. The body must match ``schemas/source_import.json`` and each entry's ``date`` must be
a real date and time as ``YYYY-MM-DD HH:mm:ss`` (stored as given); every problem is reported with
where it is, up to ``MAX_PROBLEMS``. Each entry becomes one record on the source's topic, in the
project's one record format: ``dataset`` the source id, ``msgid`` the import id, ``event_id``
``<import_id>:<n>`` (n from 0), so a retried import never stores an entry twice.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import jsonschema
import orjson

from ingest_core.errors import InvalidInput, PayloadTooLarge, SourceNotFound
from ingest_core.paths import schema_path
from ingest_core.prepare import Prepared, first_too_large
from ingest_core.record import build_records
from ingest_core.registry import Registry
from ingest_core.validation import SchemaValidator

MAX_PROBLEMS = 100
DATE_FORMAT = "YYYY-MM-DD HH:mm:ss"


def _wording(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[-1] == "date":
        return f"must be a date and time as {DATE_FORMAT}"
    return str(error.message)


class SourceImporter:
    def __init__(self, registry: Registry, max_entries: int, max_record_bytes: int) -> None:
        self._registry = registry
        self._max_entries = max_entries
        self._max_record = max_record_bytes
        self._schema = SchemaValidator(json.loads(schema_path("source_import.json").read_text("utf-8")))

    def source_of(self, body: bytes) -> tuple[str, list[dict[str, Any]]]:
        """The source id and the entries of a request; raises InvalidInput listing every problem
        (up to ``MAX_PROBLEMS``) or SourceNotFound."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidInput("Request body is not valid JSON") from None
        problems = [(where, _wording(error)) for where, error in self._schema.all_errors(doc, MAX_PROBLEMS)]
        if not problems:
            entries: list[dict[str, Any]] = doc["payload"]
            if len(entries) > self._max_entries:
                problems.append(("payload", f"should NOT have more than {self._max_entries} items"))
            for i, entry in enumerate(entries):
                if len(problems) >= MAX_PROBLEMS:
                    break
                try:
                    datetime.fromisoformat(entry["date"])
                except ValueError:
                    problems.append((f"payload[{i}].date", f"{entry['date']!r} is not a real date and time"))
        if problems:
            count = f"{len(problems)}{'+' if len(problems) >= MAX_PROBLEMS else ''}"
            raise InvalidInput(f"The request is malformed ({count} problems)", problems=problems)
        source_id: str = doc["source_id"]
        if source_id not in self._registry.sources:
            raise SourceNotFound(
                f"Unknown source_id {source_id[:128]!r}", problems=[("source_id", "no such source")]
            )
        return source_id, entries

    def prepare(self, source_id: str, entries: list[dict[str, Any]], import_id: str) -> Prepared:
        """The entries' records; raises PayloadTooLarge naming an entry whose record is too large."""
        source = self._registry.sources[source_id]
        assert source.entry_topic is not None, "a source always has a topic"
        records = build_records(source.id, import_id, entries, True, None, None, int(time.time() * 1000))
        too_large = first_too_large(records, self._max_record)
        if too_large is not None:
            index, size = too_large
            raise PayloadTooLarge(
                f"payload[{index}]: too large for Kafka: its record would take {size:,} bytes, "
                f"at most {self._max_record:,} are taken",
                problems=[(f"payload[{index}]", "too large for Kafka")],
            )
        return Prepared(source.id, source.entry_topic, records, import_id)
