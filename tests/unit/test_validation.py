"""The envelope's error messages, exactly as the reference (Ajv 6) writes them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from ingest_core.paths import schema_path
from ingest_core.validation import SchemaValidator, ajv_ordered

ENVELOPE = SchemaValidator(json.loads(schema_path("envelope.json").read_text("utf-8")))


def body(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "api.data.in",
        "ver": "v2",
        "ts": "1",
        "params": {"msgid": "m"},
        "data": {"a": 1},
    }
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (body(id=None), "#required should have required property 'id'"),
        (body(params={}), "#properties/params/required should have required property 'msgid'"),
        (body(ver=2), "#properties/ver/type should be string"),
        (body(id="api.other"), "#properties/id/enum should be equal to one of the allowed values"),
        (body(params={"msgid": "m", "x": 1}),
         "#properties/params/additionalProperties should NOT have additional properties"),
        (body(data="text"), "#properties/data/type should be object,array"),
        (body(data=[{"a": 1}, 3]), "#properties/data/items/type should be object"),
        (body(data=[]), "#properties/data/minItems should NOT have fewer than 1 items"),
        (body(ts=None, ver=None), "#required should have required property 'ver'"),  # the first missing
        (body(params={"msgid": ""}), "#properties/params/properties/msgid/minLength should NOT be shorter than 1 characters"),
        ([1, 2], "#type should be object"),
    ],
)  # fmt: skip
def test_envelope_messages(doc: Any, message: str) -> None:
    assert ENVELOPE.first_error(doc) == message


def test_additional_properties_reported_before_property_errors() -> None:
    # Ajv checks unknown keys of `params` before the known ones.
    assert ENVELOPE.first_error(body(params={"msgid": 5, "x": 1})) == (
        "#properties/params/additionalProperties should NOT have additional properties"
    )


def test_unknown_top_level_keys_are_accepted() -> None:
    assert ENVELOPE.first_error(body(extra={"anything": True})) is None


def test_valid_single_and_batch() -> None:
    assert ENVELOPE.first_error(body()) is None
    assert ENVELOPE.first_error(body(data=[{"a": 1}, {"b": 2}])) is None


def test_ajv_order_puts_required_before_properties_and_type_first() -> None:
    ordered = ajv_ordered(
        {"properties": {"a": {"enum": [1], "type": "integer"}}, "required": ["a"], "type": "object"}
    )
    assert list(ordered) == ["type", "required", "properties"]
    assert list(ordered["properties"]["a"]) == ["type", "enum"]


@pytest.mark.parametrize(
    ("schema", "instance", "message"),
    [
        ({"type": "string", "minLength": 3}, "ab", "#minLength should NOT be shorter than 3 characters"),
        ({"type": "integer", "minimum": 3}, 1, "#minimum should be >= 3"),
        ({"type": "integer", "maximum": 3}, 5, "#maximum should be <= 3"),
        ({"type": "string", "pattern": "^a"}, "b", '#pattern should match pattern "^a"'),
        ({"type": "array", "maxItems": 1}, [1, 2], "#maxItems should NOT have more than 1 items"),
        ({"const": 1}, 2, "#const should be equal to constant"),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, 1.5, "#oneOf should match exactly one schema in oneOf"),
        ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 1.5, "#anyOf should match some schema in anyOf"),
        ({"type": "string", "format": "date"}, "2024-13-45", '#format should match format "date"'),
    ],
)  # fmt: skip
def test_other_keyword_wordings(schema: dict[str, Any], instance: Any, message: str) -> None:
    assert SchemaValidator(schema).first_error(instance) == message


def test_the_fast_path_uses_the_same_draft_as_jsonschema() -> None:
    # Without `$schema`, jsonschema is told draft-07 while jsonschema-rs would take 2020-12.
    for schema, draft in [
        ({"type": "object"}, "Draft7Validator"),
        ({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}, "Draft4Validator"),
        (
            {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
            "Draft202012Validator",
        ),
    ]:
        fast = SchemaValidator(schema)._fast  # which engine runs is the point
        assert fast is not None
        assert type(getattr(fast, "__self__", None)).__name__ == draft


def test_the_project_schemas_have_a_fast_path() -> None:
    for name in ("envelope.json", "record.json", "datasets/example.json"):
        validator = SchemaValidator(json.loads(schema_path(name).read_text("utf-8")))
        assert validator._fast is not None, name


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        # A remote reference is never fetched (not at start-up, not later), so it cannot resolve.
        ("https://schemas.example.com/event.json", "Retrieval is disabled"),
        ("#/definitions/missing", "Pointer '/definitions/missing' does not exist"),
    ],
)
def test_a_reference_that_cannot_resolve_is_refused_when_loading(ref: str, fragment: str) -> None:
    # Accepted, it would make jsonschema raise (not answer) at the first event reaching it.
    with pytest.raises(jsonschema.SchemaError, match="a \\$ref cannot be resolved") as info:
        SchemaValidator({"type": "object", "properties": {"a": {"$ref": ref}}})
    assert fragment in info.value.message


def test_references_within_the_schema_are_followed() -> None:
    validator = SchemaValidator({
        "$id": "https://schemas.example.com/event.json",
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/text"}, "b": {"$ref": "event.json#/definitions/text"}},
        "definitions": {"text": {"type": "string"}},
    })  # fmt: skip
    assert validator.first_error({"a": "x", "b": "y"}) is None
    assert validator.first_error({"a": "x", "b": 1}) == "#properties/b/type should be string"


def test_an_instance_too_deep_for_jsonschema_is_invalid_not_an_exception() -> None:
    # A recursive schema fails the fast path at every level; jsonschema then recurses in Python.
    validator = SchemaValidator({"type": "object", "additionalProperties": {"$ref": "#"}})
    instance: dict[str, Any] = {"x": 1}
    for _ in range(1_000):
        instance = {"x": instance}
    assert validator.first_error(instance) == "# is nested too deeply to be checked"
