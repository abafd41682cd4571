"""Every schema is a valid JSON Schema; every example under valid/ passes and under invalid/ fails."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ingest_core.validation import SchemaValidator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ALL_SCHEMAS = sorted(p for p in SCHEMAS.rglob("*.json") if "examples" not in p.parts)
EXAMPLES = sorted((SCHEMAS / "examples").glob("*/*/*.json"))


@pytest.mark.parametrize("path", ALL_SCHEMAS, ids=lambda p: str(p.relative_to(SCHEMAS)))
def test_schema_is_valid(path: Path) -> None:
    jsonschema.Draft7Validator.check_schema(json.loads(path.read_text("utf-8")))


def test_there_are_examples_of_both_kinds() -> None:
    kinds = {p.parts[-3] for p in EXAMPLES}
    assert kinds == {"valid", "invalid"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: "/".join(p.parts[-3:]))
def test_example(path: Path) -> None:
    kind, schema_name = path.parts[-3], path.parts[-2]
    validator = SchemaValidator(json.loads((SCHEMAS / f"{schema_name}.json").read_text("utf-8")))
    error = validator.first_error(json.loads(path.read_text("utf-8")))
    if kind == "valid":
        assert error is None
    else:
        assert error is not None
