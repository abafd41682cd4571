"""Dataset schemas compiled into msgspec types: what is compiled, and that it accepts nothing invalid."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import msgspec
import orjson
import pytest

from ingest_core.event_types import compile_event_type
from ingest_core.paths import schema_path

EXAMPLE = json.loads((schema_path("datasets") / "example.json").read_text("utf-8"))


def accepts(schema: dict[str, Any] | None, event: bytes, fields: tuple[str, ...] = ()) -> bool:
    compiled = compile_event_type(schema, fields)
    assert compiled is not None
    try:
        compiled.decode(event)
    except msgspec.DecodeError:
        return False
    return True


def test_the_example_schema_is_compiled_and_its_fields_read() -> None:
    compiled = compile_event_type(EXAMPLE, ["eid", "absent", "other"])
    assert compiled is not None
    event = compiled.decode(b'{"eid": "A", "ets": 5, "x": {"deep": [1, 2]}}')
    assert compiled.field(event, "eid") == "A"
    assert compiled.field(event, "absent") is None
    assert compiled.field(event, "other") is None
    compiled = compile_event_type(EXAMPLE, ["other"])
    assert compiled is not None
    assert compiled.field(compiled.decode(b'{"eid": "A", "other": 7}'), "other") == 7


@pytest.mark.parametrize(
    ("event", "ok"),
    [
        (b'{"eid": "A"}', True),
        (b'{"eid": ""}', False),  # minLength
        (b'{"ets": 1}', False),  # required
        (b'{"eid": "A", "ets": 1.5}', False),
        (b'{"eid": "A", "ets": "1"}', False),
        (b'{"eid": "A", "date": null}', False),
        (b'{"eid": "A", "free": [null, {"a": 1e5}]}', True),
        (b'[{"eid": "A"}]', False),
    ],
)
def test_the_example_schema_decides_as_jsonschema_does(event: bytes, ok: bool) -> None:
    assert accepts(EXAMPLE, event) is ok
    assert jsonschema.Draft7Validator(EXAMPLE).is_valid(orjson.loads(event)) is ok


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}},
        {"type": "object", "properties": {"a": {"type": "string", "format": "date"}}},
        {"type": "object", "properties": {"a": {"$ref": "#/definitions/b"}}, "definitions": {"b": {}}},
        {"type": "object", "anyOf": [{"required": ["a"]}]},
        {"type": "object", "properties": {"a": {"type": "number", "multipleOf": 0.1}}},
        {"type": "object", "properties": {"a": {"type": "integer", "minimum": 1.5}}},
        {"type": "object", "properties": {"a": {"type": "number", "maximum": 2**60}}},
        {"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}},
        {"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}},
        {"type": "object", "properties": {"a": {"minLength": 1}}},  # no type: applies to strings only
        {"type": "object", "properties": {"a": {"enum": ["x", 1]}}},
        {"type": "object", "properties": {"a": {"enum": ["x"], "maxLength": 3}}},
        {"type": "object", "properties": {"a": False}},
        {"type": "object", "properties": {"a": {"type": ["object", "null"], "properties": {}}, "b": {}},
         "additionalProperties": {"type": "string"}},
        {"type": "object", "required": ["a"], "additionalProperties": False},
        {"type": "array"},
        {"type": "object", "minProperties": 1},
    ],
)  # fmt: skip
def test_what_is_outside_the_subset_is_not_compiled(schema: dict[str, Any]) -> None:
    assert compile_event_type(schema) is None


def test_no_schema_takes_any_object_and_reads_its_fields() -> None:
    compiled = compile_event_type(None, ["k"])
    assert compiled is not None
    assert compiled.field(compiled.decode(b'{"k": true, "z": [1, {"y": null}]}'), "k") is True
    for not_an_object in (b"[]", b'"x"', b"1", b"null"):
        with pytest.raises(msgspec.DecodeError):
            compiled.decode(not_an_object)


def test_a_forbidden_extra_field_is_not_read_but_refused() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    compiled = compile_event_type(schema, ["k"])
    assert compiled is not None
    assert compiled.field(compiled.decode(b'{"a": "x"}'), "k") is None
    with pytest.raises(msgspec.DecodeError):
        compiled.decode(b'{"a": "x", "k": 1}')


def test_strings_are_measured_in_code_points_as_json_schema_does() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 1}}}
    assert accepts(schema, '{"a": "😀"}'.encode())
    assert accepts(schema, b'{"a": "\\ud83d\\ude00"}')
    assert not accepts(schema, b'{"a": "ab"}')


# Generated schemas and events: whatever a compiled type accepts, jsonschema must accept. ---------

_WORDS = ["a", "b", "c", "id", "x-y", "k", "😀", ""]


def _gen_schema(rng: random.Random, depth: int) -> Any:
    if rng.random() < 0.08:
        return rng.choice([True, {}, {"description": "anything"}])
    kinds = ["string", "integer", "number", "boolean", "null"] + (
        ["object", "array"] * 2 if depth < 3 else []
    )
    if rng.random() < 0.1:
        values: list[Any] = rng.choice([["x", "y", ""], [0, 1, -3], ["😀"]])
        return {"enum": values} if rng.random() < 0.7 else {"const": values[0]}
    types = rng.sample(kinds, rng.choice([1, 1, 1, 2]))
    schema: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    for kind in types:
        if kind == "string" and rng.random() < 0.5:
            schema["minLength" if rng.random() < 0.5 else "maxLength"] = rng.randint(0, 3)
        if kind in ("integer", "number"):
            for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if rng.random() < 0.3:
                    schema[keyword] = (
                        rng.choice([-2, 0, 1, 3, 2**40])
                        if kind == "integer"
                        else rng.choice([-1.5, 0, 2, 2.5])
                    )
            if kind == "integer" and rng.random() < 0.2:
                schema["multipleOf"] = rng.choice([2, 3])
        if kind == "object":
            names = rng.sample(_WORDS, rng.randint(0, 3))
            schema["properties"] = {n: _gen_schema(rng, depth + 1) for n in names}
            if names and rng.random() < 0.6:
                schema["required"] = rng.sample(names, rng.randint(1, len(names)))
            if rng.random() < 0.3:
                schema["additionalProperties"] = rng.random() < 0.5
        if kind == "array":
            if rng.random() < 0.7:
                schema["items"] = _gen_schema(rng, depth + 1)
            if rng.random() < 0.3:
                schema["minItems" if rng.random() < 0.5 else "maxItems"] = rng.randint(0, 2)
    return schema


def _gen_value(rng: random.Random, schema: Any, depth: int = 0) -> Any:
    if rng.random() < 0.15 or not isinstance(schema, dict) or depth > 4:
        return rng.choice([None, True, False, 0, 1, -1, 1.0, 2.5, -0.0, 2**40, 2**70, "", "x", "😀", "ab",
                           [], [1, "a"], {}, {"a": 1}])  # fmt: skip
    if "enum" in schema or "const" in schema:
        return rng.choice([*schema.get("enum", [schema.get("const")]), 1.0, "z"])
    declared = schema.get("type", rng.choice(["string", "integer", "object"]))
    kind = rng.choice(declared) if isinstance(declared, list) else declared
    if kind == "string":
        return rng.choice(["", "a", "ab", "abc", "abcd", "😀", "😀😀"])
    if kind == "integer":
        return rng.choice([-3, -2, -1, 0, 1, 2, 3, 4, 6, 2**40, 2**40 + 1, 2**70, 3.0, True])
    if kind == "number":
        return rng.choice([-1.5, -1, 0, 0.5, 2, 2.5, 2.0000001, 3, 1e300, False])
    if kind == "boolean":
        return rng.choice([True, False, 0])
    if kind == "null":
        return rng.choice([None, None, 0, ""])
    if kind == "array":
        return [_gen_value(rng, schema.get("items"), depth + 1) for _ in range(rng.randint(0, 3))]
    properties = schema.get("properties", {})
    out = {}
    for name, sub in properties.items():
        if name in schema.get("required", []) or rng.random() < 0.6:
            out[name] = _gen_value(rng, sub, depth + 1)
    if rng.random() < 0.3:
        out[rng.choice(_WORDS)] = _gen_value(rng, None)
    return out


def test_a_compiled_type_accepts_no_event_its_schema_refuses() -> None:
    rng = random.Random(20261123)
    compiled_schemas = accepted = valid = 0
    for _ in range(3000):
        schema = _gen_schema(rng, 1)
        if not isinstance(schema, dict):
            continue  # a dataset's schema is an object (the registry says so)
        schema["type"] = "object"
        for keyword in ("enum", "const"):
            schema.pop(keyword, None)
        schema.setdefault("properties", {})
        compiled = compile_event_type(schema)
        if compiled is None:
            continue
        compiled_schemas += 1
        validator = jsonschema.Draft7Validator(schema)
        for _ in range(20):
            event = _gen_value(rng, schema)
            if not isinstance(event, dict):
                continue
            data = json.dumps(event, ensure_ascii=rng.random() < 0.5).encode()
            # Valid as sent and as the general path parses it (orjson reads big integers as floats).
            is_valid = validator.is_valid(event) and validator.is_valid(orjson.loads(data))
            valid += is_valid
            try:
                compiled.decode(data)
            except msgspec.DecodeError:
                continue
            accepted += 1
            assert is_valid, (schema, event)
    # Not vacuous: most generated schemas compile, and most valid events take the compiled path.
    assert compiled_schemas > 2000
    assert accepted > 0.8 * valid > 5000
