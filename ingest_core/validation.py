"""JSON Schema validation with a compiled fast path and Ajv-6-style error messages.

Valid input is checked by a compiled validator: jsonschema-rs (Rust), much faster than
fastjsonschema and jsonschema on our schemas (bench/NOTES.md). It checks formats too, so where it is
stricter than jsonschema the slow path simply has the last word. Only when it fails does jsonschema
run, and jsonschema is the source of truth and of the message: its first error, in the order Ajv 6
would have found it, written the way the reference implementation (Ajv 6) writes it: the schema path
without its first ``/``, a space, and Ajv's wording, e.g. ``#properties/params/required should have
required property 'msgid'``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for

# Ajv 6 evaluates keywords in rule groups: type-specific groups (number, string, array, object)
# and then the generic keywords; within the object group `additionalProperties` is checked
# before the `properties` themselves. jsonschema evaluates keywords in the schema's key order,
# so reordering the keys makes its first error the one Ajv would have reported.
_AJV_ORDER = [
    "$ref",
    "type",
    "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "multipleOf",
    "maxLength", "minLength", "pattern", "format",
    "maxItems", "minItems", "items", "additionalItems", "contains", "uniqueItems",
    "maxProperties", "minProperties", "required", "dependencies", "propertyNames",
    "additionalProperties", "patternProperties", "properties",
    "const", "enum", "not", "anyOf", "oneOf", "allOf", "if", "then", "else",
]  # fmt: skip
_RANK = {k: i for i, k in enumerate(_AJV_ORDER)}
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependencies")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "items")
_SUBSCHEMA_ONE = ("items", "additionalItems", "additionalProperties", "not", "contains",
                  "propertyNames", "if", "then", "else")  # fmt: skip


def ajv_ordered(schema: Any) -> Any:
    """Return a copy of ``schema`` whose keywords, at every level, are in Ajv 6's order."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key in sorted(schema, key=lambda k: _RANK.get(k, len(_RANK))):
        value = schema[key]
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            value = {k: ajv_ordered(v) for k, v in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            value = [ajv_ordered(v) for v in value]
        elif key in _SUBSCHEMA_ONE:
            value = ajv_ordered(value)
        out[key] = value
    return out


def _missing_property(error: ValidationError) -> str:
    instance = error.instance if isinstance(error.instance, dict) else {}
    required = error.validator_value if isinstance(error.validator_value, list) else []
    return next((str(p) for p in required if p not in instance), "")


def _ajv_wording(error: ValidationError) -> str:
    kw, val = str(error.validator), error.validator_value
    simple = {
        "enum": "should be equal to one of the allowed values",
        "const": "should be equal to constant",
        "additionalProperties": "should NOT have additional properties",
        "oneOf": "should match exactly one schema in oneOf",
        "anyOf": "should match some schema in anyOf",
        "not": "should NOT be valid",
        "uniqueItems": "should NOT have duplicate items",
        "contains": "should contain a valid item",
    }
    if kw in simple:
        return simple[kw]
    if kw == "required":
        return f"should have required property '{_missing_property(error)}'"
    if kw == "type":
        return "should be " + (",".join(val) if isinstance(val, list) else str(val))
    bounds = {
        "minLength": "should NOT be shorter than {} characters",
        "maxLength": "should NOT be longer than {} characters",
        "minItems": "should NOT have fewer than {} items",
        "maxItems": "should NOT have more than {} items",
        "minProperties": "should NOT have fewer than {} properties",
        "maxProperties": "should NOT have more than {} properties",
        "minimum": "should be >= {}",
        "maximum": "should be <= {}",
        "exclusiveMinimum": "should be > {}",
        "exclusiveMaximum": "should be < {}",
        "multipleOf": "should be multiple of {}",
        "pattern": 'should match pattern "{}"',
        "format": 'should match format "{}"',
    }
    if kw in bounds:
        return bounds[kw].format(val)
    return error.message


def ajv_message(error: ValidationError) -> str:
    """Render one jsonschema error the way Ajv 6 (and so the reference) renders it."""
    path = "/".join(str(p) for p in error.absolute_schema_path)
    return f"#{path} {_ajv_wording(error)}"


class SchemaValidator:
    """A JSON Schema compiled twice: jsonschema-rs for the verdict, jsonschema for the message."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        ordered = ajv_ordered(dict(schema))
        cls = validator_for(ordered, default=jsonschema.Draft7Validator)
        cls.check_schema(ordered)
        self._slow = cls(ordered, format_checker=cls.FORMAT_CHECKER)
        # The same draft as jsonschema's (which defaults to draft-07, where jsonschema-rs would take
        # the latest): jsonschema-rs names its classes as jsonschema does.
        fast_cls = getattr(jsonschema_rs, cls.__name__, None)
        self._fast: Callable[[Any], bool] | None = None
        try:
            # Offline: a schema is never completed over the network (at start-up, from wherever its
            # $ref points); jsonschema and Ajv do not fetch either.
            if fast_cls is not None:
                self._fast = fast_cls(ordered, validate_formats=True, offline=True).is_valid
        except jsonschema_rs.ValidationError as exc:
            # Refused now rather than at the first event that reaches the reference, where
            # jsonschema would raise instead of answering.
            if isinstance(exc.kind, jsonschema_rs.ValidationErrorKind.Referencing):
                raise jsonschema.SchemaError(
                    f"a $ref cannot be resolved ({exc.message}); only references within the schema"
                    " itself are followed, nothing is fetched"
                ) from None
        except Exception:  # noqa: BLE001, S110 - a schema jsonschema-rs cannot compile: the slow path
            pass

    def first_error(self, instance: Any) -> str | None:
        """Return the Ajv-style message of the first violation, or None when ``instance`` is valid."""
        if self._fast is not None:
            try:
                if self._fast(instance):
                    return None
            except Exception:  # noqa: BLE001, S110 - a value it cannot take: jsonschema decides
                pass
        try:
            error = next(self._slow.iter_errors(instance), None)
        except RecursionError:
            # jsonschema recurses in Python, level by level: an instance nested deeper than the
            # interpreter allows cannot be checked, so it is not accepted.
            return "# is nested too deeply to be checked"
        return None if error is None else ajv_message(error)

    def all_errors(self, instance: Any, most: int) -> list[tuple[str, jsonschema.ValidationError]]:
        """Up to ``most`` violations, each with where it is (``payload[3].date``), in the order
        jsonschema finds them; empty when ``instance`` is valid."""
        if self._fast is not None:
            try:
                if self._fast(instance):
                    return []
            except Exception:  # noqa: BLE001, S110 - a value it cannot take: jsonschema decides
                pass
        out = []
        try:
            for error in self._slow.iter_errors(instance):
                out.append((instance_path(error.absolute_path), error))
                if len(out) >= most:
                    break
        except RecursionError:
            return [("", jsonschema.ValidationError("nested too deeply to be checked"))]
        return out


def instance_path(path: Any) -> str:
    """A location in a document as a reader writes it: ``payload[3].date`` (empty: the whole)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
