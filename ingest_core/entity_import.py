"""Entity file imports (``POST /api/v1/entities/{entity}/import``): the request's form fields checked
into an ``EntityRequest``, and a file's rows turned into the entity's records. Pure: no I/O.

A row becomes one record on the entity's topic, in the project's one record format: ``dataset`` the
entity, ``msgid`` the job id, ``event_id`` ``<job id>:<row number>`` (rows numbered as a
spreadsheet shows them, the header row counted), so a resumed job never stores a row twice. The
event is the row's mapped, coerced values (empty cells left out), checked against the entity's
schema, plus ``domain``: the request's ``domain`` header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ingest_core.errors import InvalidInput, Problem
from ingest_core.record import HEADER_DATASET, HEADER_EVENT_ID, HEADER_MSGID, OutRecord, build_value
from ingest_core.registry import Entity
from ingest_core.tabular import Coercer

FILE_TYPES = ("csv", "xlsx")
DEFAULT_LOCALE = "en-US"
MAX_COLUMN = 16_384  # XLSX's last column (XFD); CSV files are held to the same
MAX_DOMAIN_CHARS = 256
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
_COLUMN = re.compile(r"^[1-9][0-9]{0,4}$")
# Offsets in use run from UTC-12:00 to UTC+14:00.
MIN_OFFSET, MAX_OFFSET = -12 * 60, 14 * 60


@dataclass(frozen=True, slots=True)
class EntityRequest:
    """An accepted upload's parameters, as stored in its job's payload."""

    file_type: str
    mapping: dict[int, str]
    locale: str
    tz_offset_min: int
    domain: str

    def payload(self, file_name: str, size: int) -> dict[str, Any]:
        return {
            "fileName": file_name, "size": size, "type": self.file_type,
            "mapping": {str(c): p for c, p in self.mapping.items()}, "locale": self.locale,
            "timezoneOffset": self.tz_offset_min, "domain": self.domain,
        }  # fmt: skip

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> EntityRequest:
        return cls(
            payload["type"], {int(c): p for c, p in payload["mapping"].items()}, payload["locale"],
            int(payload["timezoneOffset"]), payload["domain"],
        )  # fmt: skip


def check_domain(value: str | None) -> str:
    """The ``domain`` header; raises InvalidInput when it is missing or unusable."""
    if value is None or not value.strip():
        raise InvalidInput("The domain header is required", problems=[("domain", "is required")])
    if len(value) > MAX_DOMAIN_CHARS:
        raise InvalidInput(
            "The domain header is too long", problems=[("domain", f"at most {MAX_DOMAIN_CHARS} characters")]
        )
    return value.strip()


def check_form(entity: Entity, fields: Mapping[str, str], has_file: bool, domain: str) -> EntityRequest:
    """The form's fields checked against the entity; raises InvalidInput listing every problem, each
    with the field at fault."""
    problems: list[Problem] = []
    if not has_file:
        problems.append(("file", "is required"))
    file_type = fields.get("type", "").strip().lower()
    if file_type not in FILE_TYPES:
        problems.append(("type", "is required" if "type" not in fields else "must be csv or xlsx"))
    mapping = _mapping(entity, fields.get("mapping"), problems)
    locale = fields.get("locale", "").strip() or DEFAULT_LOCALE
    if not _LOCALE.fullmatch(locale):
        problems.append(("locale", "must be a BCP 47 language tag, such as en-US, en-GB or de-DE"))
    offset = 0
    raw_offset = fields.get("timezoneOffset", "").strip()
    if raw_offset:
        try:
            number = float(raw_offset)
        except ValueError:
            number = 0.5  # not whole: refused below
        if number.is_integer() and MIN_OFFSET <= number <= MAX_OFFSET:
            offset = int(number)
        else:
            problems.append(
                ("timezoneOffset", f"must be whole minutes from UTC, from {MIN_OFFSET} to {MAX_OFFSET}")
            )
    if problems:
        raise InvalidInput(f"The request is malformed ({len(problems)} problems)", problems=problems)
    return EntityRequest(file_type, mapping, locale, offset, domain)


def _mapping(entity: Entity, raw: str | None, problems: list[Problem]) -> dict[int, str]:
    if raw is None:
        problems.append(("mapping", "is required"))
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        problems.append(("mapping", "is not valid JSON"))
        return {}
    if not isinstance(doc, dict) or not doc:
        problems.append(("mapping", "must be a JSON object of column index to property name"))
        return {}
    mapping: dict[int, str] = {}
    for column, prop in doc.items():
        if not _COLUMN.fullmatch(column) or int(column) > MAX_COLUMN:
            problems.append(
                (f"mapping.{column[:32]}", f"a column index is a whole number from 1 to {MAX_COLUMN}")
            )
        elif not isinstance(prop, str) or prop not in entity.properties:
            name = prop[:128] if isinstance(prop, str) else orjson.dumps(prop)[:128].decode()
            problems.append((f"mapping.{column}", f"{name!r} is not a property of {entity.target.id}"))
        else:
            mapping[int(column)] = prop
    targets = list(mapping.values())
    for prop in sorted({p for p in targets if targets.count(p) > 1}):
        problems.append(("mapping", f"{prop!r} is the target of more than one column"))
    return dict(sorted(mapping.items()))


class RowMapper:
    """A job's rows to its entity's records."""

    def __init__(self, entity: Entity, job_id: str, request: EntityRequest) -> None:
        self._entity = entity.target
        assert self._entity.entry_topic is not None, "an entity always has a topic"
        self.topic: str = self._entity.entry_topic
        self._job_id = job_id
        self._domain = request.domain
        self._row = Coercer(entity.properties, request.locale, request.tz_offset_min).rows(request.mapping)
        self._dataset_header = (HEADER_DATASET, self._entity.id.encode())
        self._msgid_header = (HEADER_MSGID, job_id.encode())

    def record(self, number: int, cells: list[Any], syncts_ms: int) -> OutRecord | None:
        """The row's record, None when its mapped cells are all empty (no row); raises ValueError
        saying why the row cannot be imported."""
        values = self._row(cells)
        if not values:
            return None
        if self._entity.validator is not None:
            problem = self._entity.validator.first_error(values)
            if problem is not None:
                raise ValueError(problem)
        values["domain"] = self._domain
        event_id = f"{self._job_id}:{number}"
        key = event_id.encode()
        value = build_value(self._entity.id, self._job_id, event_id, values, syncts_ms)
        return OutRecord(key, value, [self._dataset_header, (HEADER_EVENT_ID, key), self._msgid_header])
