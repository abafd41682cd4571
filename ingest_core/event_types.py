"""Dataset schemas compiled into msgspec types: an event's checks in C, without parsing all of it.

A dataset's JSON Schema that keeps to a common subset is compiled into a msgspec type. Decoding an
event's JSON bytes with it checks the event against the schema without building Python objects for
the fields the schema does not name, so the gateway can forward the event's JSON as it came, and
the sink can check a record's event, without parsing it into Python and serialising it again.

The subset: ``type`` (one or several), ``enum``/``const`` of strings or of integers, ``minLength``/
``maxLength``, ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` (numbers, as in
draft 6 and later), ``multipleOf`` on integers, ``properties``/``required``/``additionalProperties``
(true or false), ``items`` (one schema), ``minItems``/``maxItems``, and annotations (``title``,
``description``, ...). A schema using anything else (``pattern``, ``format``, ``$ref``, the
combinators, ...) is not compiled, and its events take the general path (orjson and jsonschema).

Sound, not complete: an event the compiled type accepts, the schema accepts; an event it refuses may
still be valid (``1.0`` where the schema asks for an integer), so a refusal only means "take the
general path", which decides and words the error. ``tests/unit/test_event_types.py`` checks the
first half against jsonschema on thousands of generated schemas and events.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

# Keywords that never change whether an instance is valid.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "examples", "readOnly",
     "writeOnly", "deprecated"}
)  # fmt: skip
_KEYWORDS = frozenset(
    {"type", "enum", "const", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
     "exclusiveMaximum", "multipleOf", "properties", "required", "additionalProperties", "items",
     "minItems", "maxItems", "uniqueItems"}
)  # fmt: skip
_TYPES = frozenset({"string", "integer", "number", "boolean", "null", "object", "array"})
# A double holds every integer up to 2**53 exactly: a bound beyond it would be rounded.
_EXACT_IN_DOUBLE = 2**53
_names = itertools.count()


class _Unsupported(Exception):
    """The schema uses something outside the compiled subset."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exact_number(value: Any) -> bool:
    """A bound a double holds as it is."""
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value) and abs(value) <= _EXACT_IN_DOUBLE


def _length_bounds(schema: Mapping[str, Any], low: str, high: str) -> dict[str, Any]:
    meta = {}
    for keyword, name in ((low, "min_length"), (high, "max_length")):
        if keyword in schema:
            value = schema[keyword]
            if not _is_int(value) or value < 0:
                raise _Unsupported(keyword)
            meta[name] = value
    return meta


def _numeric(schema: Mapping[str, Any], integer: bool) -> Any:
    meta: dict[str, Any] = {}
    for keyword, name in (("minimum", "ge"), ("maximum", "le"), ("exclusiveMinimum", "gt"),
                          ("exclusiveMaximum", "lt")):  # fmt: skip
        if keyword in schema:
            value = schema[keyword]
            # Integers are compared exactly; a number's bound must survive the trip to a double.
            if integer and not _is_int(value):
                raise _Unsupported(keyword)
            if not integer and not _exact_number(value):
                raise _Unsupported(keyword)
            meta[name] = value
    if "multipleOf" in schema:
        # On floats JSON Schema and msgspec round differently: only integers are compiled.
        value = schema["multipleOf"]
        if not integer or not _is_int(value) or value <= 0:
            raise _Unsupported("multipleOf")
        meta["multiple_of"] = value
    base = int if integer else float
    return Annotated[base, msgspec.Meta(**meta)] if meta else base


def _literal(schema: Mapping[str, Any]) -> Any:
    if schema.keys() - _ANNOTATIONS - {"type", "enum", "const"}:
        raise _Unsupported("enum with other keywords")
    if "enum" in schema and "const" in schema:
        raise _Unsupported("enum and const")
    values = schema["enum"] if "enum" in schema else [schema["const"]]
    if not isinstance(values, list) or not values:
        raise _Unsupported("enum")
    if all(isinstance(v, str) for v in values):
        kind = "string"
    elif all(_is_int(v) for v in values):
        # JSON Schema compares numbers by value (1 equals 1.0); Literal takes 1 only: stricter.
        kind = "integer"
    else:
        raise _Unsupported("enum of other values")
    declared = schema.get("type")
    if declared is not None:
        names = [declared] if isinstance(declared, str) else declared
        if not isinstance(names, list) or not (kind in names or (kind == "integer" and "number" in names)):
            raise _Unsupported("enum and type disagree")
    return Literal[tuple(values)]


def _struct(schema: Mapping[str, Any], extra: Iterable[str] = ()) -> Any:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    if additional == {}:
        additional = True
    if not isinstance(properties, dict) or not isinstance(required, list) or not isinstance(additional, bool):
        raise _Unsupported("object")
    if not all(isinstance(name, str) for name in required):
        raise _Unsupported("required")
    if additional is False and any(name not in properties for name in required):
        # Required but not allowed: no event is valid. Not worth a type of its own.
        raise _Unsupported("required property not allowed")
    names = list(properties) + [n for n in dict.fromkeys(required) if n not in properties]
    if additional is not False:
        # Fields the caller reads (the key, the dedup key) that the schema does not name: any value.
        names += [n for n in dict.fromkeys(extra) if n not in names]
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    required_names = set(required)
    for i, name in enumerate(names):
        kind = _compile(properties[name]) if name in properties else Any
        if name in required_names:
            fields.append((f"f{i}", kind))
        else:
            fields.append((f"f{i}", kind, msgspec.UNSET))
    return msgspec.defstruct(
        f"Event{next(_names)}",
        fields,
        kw_only=True,
        forbid_unknown_fields=additional is False,
        rename={f"f{i}": name for i, name in enumerate(names)},
    )


def _of_type(name: str, schema: Mapping[str, Any]) -> Any:
    if name == "string":
        meta = _length_bounds(schema, "minLength", "maxLength")
        return Annotated[str, msgspec.Meta(**meta)] if meta else str
    if name in ("integer", "number"):
        return _numeric(schema, integer=name == "integer")
    if name == "boolean":
        return bool
    if name == "null":
        return None
    if name == "object":
        return _struct(schema)
    # "array"
    items = schema.get("items", True)
    if isinstance(items, list):
        raise _Unsupported("items as a list")
    if schema.get("uniqueItems", False) is not False:
        raise _Unsupported("uniqueItems")
    meta = _length_bounds(schema, "minItems", "maxItems")
    kind = list.__class_getitem__(_compile(items))  # list[...] of a type known at run time only
    return Annotated[kind, msgspec.Meta(**meta)] if meta else kind


def _compile(schema: Any) -> Any:
    if schema is True:
        return Any
    if not isinstance(schema, dict):
        raise _Unsupported("schema")
    keywords = schema.keys() - _ANNOTATIONS
    if keywords - _KEYWORDS:
        raise _Unsupported(", ".join(sorted(keywords - _KEYWORDS)))
    if "enum" in schema or "const" in schema:
        return _literal(schema)
    declared = schema.get("type")
    if declared is None:
        # Without a type each keyword applies to its own kind of value only: compiled when none is used.
        if keywords:
            raise _Unsupported("keywords without a type")
        return Any
    names = [declared] if isinstance(declared, str) else declared
    if not isinstance(names, list) or not names or len(set(names)) != len(names) or not set(names) <= _TYPES:
        raise _Unsupported("type")
    if "number" in names and "integer" in names:
        names = [n for n in names if n != "integer"]  # a float takes integers too
    return functools.reduce(operator.or_, [_of_type(n, schema) for n in names])


@dataclass(frozen=True, slots=True)
class EventType:
    """A dataset's compiled event type. ``decode`` raises msgspec.DecodeError (and ValidationError,
    its subclass) for what it refuses; ``field`` reads a top-level field of a decoded event."""

    decode: Callable[[bytes], Any]
    attributes: Mapping[str, str]

    def field(self, event: Any, name: str) -> Any:
        """The event's field ``name`` (one of the ``fields`` it was compiled with), None if absent."""
        attribute = self.attributes.get(name)
        value = msgspec.UNSET if attribute is None else getattr(event, attribute)
        return None if value is msgspec.UNSET else value


def _top_level(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    top = dict(schema or {})
    # Events are objects by the envelope's and the record's own schemas: a top level without a type
    # is an object's schema.
    if top.get("type", "object") != "object" or "enum" in top or "const" in top:
        raise _Unsupported("a top level that is not an object's")
    top.pop("type", None)
    if top.keys() - _ANNOTATIONS - _KEYWORDS:
        raise _Unsupported(", ".join(sorted(top.keys() - _ANNOTATIONS - _KEYWORDS)))
    return top


def compile_event_type(
    schema: Mapping[str, Any] | None,
    fields: Iterable[str] = (),
    on_unsupported: Callable[[str], None] | None = None,
) -> EventType | None:
    """The dataset's schema as an EventType, or None when it uses anything outside the subset.

    ``schema`` None: the dataset takes any object. ``fields``: top-level fields the caller will read
    with ``EventType.field`` (the dataset's key and dedup key), whether the schema names them or not.
    ``on_unsupported``: told what kept the schema out (a keyword, usually), when it is.
    """
    wanted = list(fields)
    try:
        struct = _struct(_top_level(schema), wanted)
        decoder = msgspec.json.Decoder(struct)
    except (_Unsupported, TypeError, ValueError, OverflowError) as exc:
        # TypeError: a union msgspec cannot decode (two kinds of object, say); the others: a bound
        # msgspec cannot hold.
        if on_unsupported is not None:
            on_unsupported(str(exc) if isinstance(exc, _Unsupported) else f"what msgspec cannot take: {exc}")
        return None
    attributes = {f.encode_name: f.name for f in msgspec.structs.fields(struct)}
    return EventType(decode=decoder.decode, attributes={n: attributes[n] for n in wanted if n in attributes})
