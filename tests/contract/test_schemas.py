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


def _record_mutations() -> list[object]:
    base = json.loads((SCHEMAS / "examples" / "valid" / "record" / "from-gateway.json").read_text("utf-8"))
    out: list[object] = [None, [], "x", {}]
    wrong: tuple[object, ...] = (None, 1, "", [], {}, True, 1.5)
    for key in ("dataset", "msgid", "event_id", "event", "obsrv_meta"):
        for bad in wrong:
            out.append({**base, key: bad})
        out.append({k: v for k, v in base.items() if k != key})
    for bad in (None, -1, 1.5, "1", True, [], {}, 253402300800000, 10**30, 1e30):
        out.append({**base, "obsrv_meta": {**base["obsrv_meta"], "syncts": bad}})
    for bad in (None, 1, "s", [], {"connector": 1}, {"connectorInstance": None}, {"connector": "a"}, {}):
        out.append({**base, "obsrv_meta": {**base["obsrv_meta"], "source": bad}})
    out.append({**base, "obsrv_meta": {"syncts": 5}})
    out.append({**base, "obsrv_meta": {"syncts": 253402300799999}})
    out.append({**base, "extra": 1})
    return out


@pytest.mark.parametrize("doc", _record_mutations())
def test_sink_fast_record_check_accepts_nothing_the_schema_rejects(doc: object) -> None:
    from consumers.sink.decode import fast_record

    schema = SchemaValidator(json.loads((SCHEMAS / "record.json").read_text("utf-8")))
    if fast_record(json.dumps(doc).encode()) is not None:
        assert schema.first_error(doc) is None


def test_sink_fast_record_check_accepts_the_valid_examples() -> None:
    from consumers.sink.decode import fast_record

    for path in (SCHEMAS / "examples" / "valid" / "record").glob("*.json"):
        assert fast_record(path.read_bytes()) is not None, path.name


def test_the_fast_record_check_and_the_schema_share_the_latest_syncts() -> None:
    from consumers.sink.decode import MAX_SYNCTS_MS

    record = json.loads((SCHEMAS / "record.json").read_text("utf-8"))
    assert record["properties"]["obsrv_meta"]["properties"]["syncts"]["maximum"] == MAX_SYNCTS_MS
