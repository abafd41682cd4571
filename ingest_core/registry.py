"""The registry: datasets, REST sources, import types and entities, and their Kafka topics, read
from ``topics.yaml`` and validated at start.

Every record on Kafka names what it belongs to in its ``dataset`` field: a dataset's id, a
source's id, an import type or an entity. The four share one name space (the registry refuses a name used
twice), so a consumer finds any record's topic and schema in ``Registry.records``.

A bad file raises ``RegistryError`` whose message names the file and the key at fault; programs
print it and stop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from ingest_core.config_files import check_document, read_yaml
from ingest_core.event_types import EventType, compile_event_type
from ingest_core.paths import schema_path
from ingest_core.validation import SchemaValidator

DEFAULT_PARTITIONS = 3

log = logging.getLogger(__name__)


class RegistryError(ValueError):
    """The registry file is missing, unparsable or invalid; the message names the key at fault."""


@dataclass(frozen=True, slots=True)
class Dataset:
    id: str
    entry_topic: str | None
    partitions: int
    replication_factor: int | None
    min_insync_replicas: int | None
    key: str | None
    dedup_key: str | None
    batch: bool
    schema_file: Path | None
    validator: SchemaValidator | None
    # The schema compiled for the events' common path (see ingest_core.event_types); None when it
    # uses anything outside the subset compiled.
    event_type: EventType | None
    # May anonymous clients publish to it? Only datasets can be public; imports always need a key.
    public: bool = False


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity of the file imports: the Dataset of its records, and the properties a mapping may
    target (each property's schema: its ``type`` and ``format`` decide how cells are coerced)."""

    target: Dataset
    properties: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Registry:
    path: Path
    datasets: Mapping[str, Dataset]
    # REST sources and JSONL import types, each as a Dataset of its records (its topic as the
    # entry topic; a source's entries checked by schemas/sources/entry.json).
    sources: Mapping[str, Dataset] = field(default_factory=dict)
    types: Mapping[str, Dataset] = field(default_factory=dict)
    entities: Mapping[str, Entity] = field(default_factory=dict)
    # Everything a record's ``dataset`` may name: datasets, sources, types and entities.
    records: Mapping[str, Dataset] = field(default_factory=dict)

    def get(self, dataset_id: str) -> Dataset | None:
        """A dataset of ``POST /v2/data/in`` (not a source or a type)."""
        return self.datasets.get(dataset_id)

    def entry_topics(self) -> list[str]:
        """Every topic records are published to (datasets', sources' and types'), once each."""
        return list(dict.fromkeys(d.entry_topic for d in self.records.values() if d.entry_topic))

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self.datasets.values())


def _load_dataset_schema(file: Path, where: str, source: Path) -> tuple[dict[str, Any], SchemaValidator]:
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"{source}: {where}: schema file {file} not found") from None
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{source}: {where}: schema file {file} is not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise RegistryError(f"{source}: {where}: schema file {file} must hold a JSON object")
    try:
        return schema, SchemaValidator(schema)
    except jsonschema.SchemaError as exc:
        raise RegistryError(f"{source}: {where}: {file} is not a valid JSON Schema: {exc.message}") from None


def _uncompiled(dataset_id: str, schema_file: Path | None) -> Callable[[str], None]:
    def note(reason: str) -> None:
        log.info(
            "dataset %r: its schema (%s) uses %s, outside the subset compiled for the fast path;"
            " its events are parsed and checked by jsonschema (docs/semantics.md: forwarded as sent)",
            dataset_id, schema_file, reason,
        )  # fmt: skip

    return note


def parse_registry(doc: Any, source: Path) -> Registry:
    """Validate a parsed registry document and build the registry; raises RegistryError."""
    check_document(doc, "topics.schema.json", source, RegistryError)
    datasets: dict[str, Dataset] = {}
    records: dict[str, Dataset] = {}

    def claim(name: str, where: str) -> None:
        if name in records:
            raise RegistryError(
                f"{source}: {where}: {name!r} is already a dataset, source or type: records name"
                " them in one field, so each name is used once"
            )

    for i, item in enumerate(doc["datasets"]):
        where = f"datasets[{i}]"
        if item["id"] in datasets:
            raise RegistryError(f"{source}: {where}.id: duplicate dataset id {item['id']!r}")
        schema_file = validator = schema = None
        if "schema" in item:
            schema_file = (source.parent / item["schema"]).resolve()
            schema, validator = _load_dataset_schema(schema_file, f"{where}.schema", source)
        read = [name for name in (item.get("key"), item.get("dedup_key")) if name is not None]
        datasets[item["id"]] = Dataset(
            id=item["id"],
            entry_topic=item.get("entry_topic"),
            partitions=item.get("partitions", DEFAULT_PARTITIONS),
            replication_factor=item.get("replication_factor"),
            min_insync_replicas=_min_isr(item, where, source),
            key=item.get("key"),
            dedup_key=item.get("dedup_key"),
            batch=item.get("batch", True),
            schema_file=schema_file,
            validator=validator,
            event_type=compile_event_type(schema, read, _uncompiled(item["id"], schema_file)),
            public=item.get("public", False),
        )
        records[item["id"]] = datasets[item["id"]]
    entry_file = schema_path("sources/entry.json")
    entry_schema, entry_validator = _load_dataset_schema(entry_file, "sources", source)
    sources: dict[str, Dataset] = {}
    for i, item in enumerate(doc.get("sources", [])):
        claim(item["id"], f"sources[{i}].id")
        sources[item["id"]] = records[item["id"]] = _target(
            item["id"],
            item,
            entry_file,
            entry_schema,
            entry_validator,
            _min_isr(item, f"sources[{i}]", source),
        )
    types: dict[str, Dataset] = {}
    for i, item in enumerate(doc.get("types", [])):
        claim(item["type"], f"types[{i}].type")
        type_file = type_schema = type_validator = None
        if "schema" in item:
            type_file = (source.parent / item["schema"]).resolve()
            type_schema, type_validator = _load_dataset_schema(type_file, f"types[{i}].schema", source)
        types[item["type"]] = records[item["type"]] = _target(
            item["type"], item, type_file, type_schema, type_validator, _min_isr(item, f"types[{i}]", source)
        )
    entities: dict[str, Entity] = {}
    for i, item in enumerate(doc.get("entities", [])):
        where = f"entities[{i}]"
        claim(item["id"], f"{where}.id")
        entity_file = (source.parent / item["schema"]).resolve()
        entity_schema, entity_validator = _load_dataset_schema(entity_file, f"{where}.schema", source)
        properties = entity_schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            raise RegistryError(
                f'{source}: {where}.schema: {entity_file} must declare the entity\'s "properties"'
            )
        if "domain" in properties:
            raise RegistryError(
                f'{source}: {where}.schema: "domain" is set from the request\'s domain header on every'
                " record: an entity may not declare it as a property"
            )
        records[item["id"]] = _target(
            item["id"], item, entity_file, entity_schema, entity_validator, _min_isr(item, where, source)
        )
        entities[item["id"]] = Entity(records[item["id"]], properties)
    return Registry(
        path=source, datasets=datasets, sources=sources, types=types, entities=entities, records=records
    )


def _target(
    name: str, item: Mapping[str, Any], schema_file: Path | None, schema: dict[str, Any] | None,
    validator: SchemaValidator | None, min_insync_replicas: int | None,
) -> Dataset:  # fmt: skip
    """A source, a type or an entity as the Dataset of its records: keyed and identified by the import."""
    return Dataset(
        id=name,
        entry_topic=item["topic"],
        partitions=item.get("partitions", DEFAULT_PARTITIONS),
        replication_factor=item.get("replication_factor"),
        min_insync_replicas=min_insync_replicas,
        key=None,
        dedup_key=None,
        batch=True,
        schema_file=schema_file,
        validator=validator,
        event_type=compile_event_type(schema, [], _uncompiled(name, schema_file)),
    )


def _min_isr(item: Mapping[str, Any], where: str, source: Path) -> int | None:
    """``min_insync_replicas``, when given, no more than the replication factor (a topic whose every
    write needs more replicas than it has would refuse them all)."""
    value: int | None = item.get("min_insync_replicas")
    factor = item.get("replication_factor")
    if value is not None and factor is not None and value > factor:
        raise RegistryError(
            f"{source}: {where}.min_insync_replicas: {value} is more than its replication_factor {factor}"
        )
    return value


def load_registry(path: Path) -> Registry:
    """Read and validate the registry file; raises RegistryError."""
    return parse_registry(read_yaml(path, "registry", RegistryError), path.resolve())
