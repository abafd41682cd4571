"""The registry file: good files load, bad ones stop the program with the key at fault named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest_core.registry import RegistryError, load_registry

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


def test_project_registry_loads() -> None:
    registry = load_registry(ROOT / "topics.yaml")
    example = registry.get("example")
    assert example is not None
    assert example.entry_topic == "ingest.example"
    assert example.validator is not None
    assert registry.entry_topics()[0] == "ingest.example"


def test_defaults(tmp_path: Path) -> None:
    d = load_registry(write(tmp_path, {"datasets": [{"id": "a", "entry_topic": "t"}]})).get("a")
    assert d is not None
    assert (d.partitions, d.batch, d.key, d.dedup_key, d.validator) == (3, True, None, None, None)


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (
            {"datasets": [{"id": "a", "partitions": "x"}]},
            "datasets[0].partitions: 'x' is not of type 'integer'",
        ),
        ({"datasets": [{"id": "a", "colour": "red"}]}, "datasets[0]: Additional properties are not allowed"),
        ({"datasets": [{"entry_topic": "t"}]}, "datasets[0]: 'id' is a required property"),
        ({"datasets": [{"id": "a"}, {"id": "a"}]}, "datasets[1].id: duplicate dataset id 'a'"),
        ({"datasets": [{"id": "a", "schema": "missing.json"}]}, "datasets[0].schema: schema file"),
        ({}, "(top level): 'datasets' is a required property"),
        ("datasets: [", "not valid YAML"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, doc: Any, fragment: str) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, doc))
    assert fragment in str(info.value)


def test_invalid_dataset_schema_is_reported(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"type": "nonsense"}', encoding="utf-8")
    with pytest.raises(RegistryError, match=r"datasets\[0\]\.schema: .* is not a valid JSON Schema"):
        load_registry(write(tmp_path, {"datasets": [{"id": "a", "schema": "s.json"}]}))


def test_dataset_schema_with_a_remote_reference_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"$ref": "https://schemas.example.com/event.json"}', encoding="utf-8")
    with pytest.raises(RegistryError, match=r"datasets\[0\]\.schema: .* a \$ref cannot be resolved"):
        load_registry(write(tmp_path, {"datasets": [{"id": "a", "schema": "s.json"}]}))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read the registry"):
        load_registry(tmp_path / "absent.yaml")


def test_sources_and_types_are_record_targets_beside_the_datasets(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text('{"type": "object", "required": ["user_id"]}', encoding="utf-8")
    registry = load_registry(
        write(
            tmp_path,
            {
                "datasets": [{"id": "d", "entry_topic": "ingest.d"}],
                "sources": [{"id": "s", "topic": "source.s", "partitions": 6}],
                "types": [
                    {"type": "t", "topic": "import.t", "schema": "t.json"},
                    {"type": "u", "topic": "import.u"},
                ],
            },
        )
    )
    assert registry.get("s") is None  # not a dataset of POST /v2/data/in
    assert set(registry.records) == {"d", "s", "t", "u"}
    assert registry.entry_topics() == ["ingest.d", "source.s", "import.t", "import.u"]
    source, typed, free = registry.sources["s"], registry.types["t"], registry.types["u"]
    assert (source.entry_topic, source.partitions) == ("source.s", 6)
    # A source's entries are checked by the entry schema; a type's data by its own, if any.
    assert source.validator is not None
    assert source.validator.first_error({"date": "2024-03-08 00:29:00", "name": "n", "content": "c"}) is None
    assert source.validator.first_error({"date": "2024-03-08", "name": "n", "content": "c"}) is not None
    assert typed.validator is not None
    assert typed.validator.first_error({}) is not None
    assert free.validator is None


def test_the_project_registry_has_the_references_source_and_types() -> None:
    registry = load_registry(ROOT / "topics.yaml")
    assert set(registry.sources) == {"your_id"}
    assert set(registry.types) == {"user_profile", "transaction", "user"}
    customers = registry.entities["customers"]
    assert customers.target.entry_topic == "entity.customers"
    assert registry.records["customers"] is customers.target
    assert customers.properties["signed_up"] == {"type": "string", "format": "date-time"}


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (
            {"datasets": [{"id": "x", "entry_topic": "t"}], "sources": [{"id": "x", "topic": "s"}]},
            "sources[0].id: 'x' is already a dataset, source or type",
        ),
        (
            {"datasets": [], "sources": [{"id": "s", "topic": "s"}], "types": [{"type": "s", "topic": "t"}]},
            "types[0].type: 's' is already a dataset, source or type",
        ),
        ({"datasets": [], "sources": [{"id": "s"}]}, "sources[0]: 'topic' is a required property"),
        ({"datasets": [], "types": [{"type": "t", "topic": "bad topic"}]}, "types[0].topic"),
        (
            {"datasets": [], "types": [{"type": "t", "topic": "t", "schema": "missing.json"}]},
            "types[0].schema",
        ),
        (
            {
                "datasets": [],
                "types": [{"type": "e", "topic": "t"}],
                "entities": [{"id": "e", "topic": "t", "schema": "e.json"}],
            },
            "entities[0].id: 'e' is already a dataset, source or type",
        ),
        (
            {"datasets": [], "entities": [{"id": "e", "topic": "t"}]},
            "entities[0]: 'schema' is a required property",
        ),
        (
            {
                "datasets": [],
                "types": [{"type": "t", "topic": "t", "replication_factor": 1, "min_insync_replicas": 2}],
            },
            "types[0].min_insync_replicas: 2 is more than its replication_factor 1",
        ),
        (
            {"datasets": [], "entities": [{"id": "e", "topic": "t", "schema": "no_properties.json"}]},
            'must declare the entity\'s "properties"',
        ),
        (
            {"datasets": [], "entities": [{"id": "e", "topic": "t", "schema": "with_domain.json"}]},
            "an entity may not declare it",
        ),
    ],
)
def test_bad_sources_types_and_entities_name_the_key(tmp_path: Path, doc: Any, fragment: str) -> None:
    (tmp_path / "no_properties.json").write_text('{"type": "object"}')
    (tmp_path / "with_domain.json").write_text('{"properties": {"domain": {"type": "string"}}}')
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, doc))
    assert fragment in str(info.value)
