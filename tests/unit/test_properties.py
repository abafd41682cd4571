"""Property tests (hypothesis): the envelope's two paths agree, the validator agrees with
jsonschema and words every failure the Ajv way, the JSONL and CSV readers give back what was
written, coercions give back the numbers they were shown, and an upload token survives no change."""

from __future__ import annotations

import csv
import io
import json
import string
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_core.errors import Forbidden, IngestError
from ingest_core.jsonl import lines
from ingest_core.prepare import Ingestor
from ingest_core.registry import load_registry
from ingest_core.tabular import Coercer, csv_rows
from ingest_core.upload_token import sign, verify
from ingest_core.validation import SchemaValidator
from tests.support.gateway import EXAMPLE_SCHEMA, write_registry

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
EVENT = st.fixed_dictionaries({}, optional={"eid": SCALARS, "ets": SCALARS, "mid": SCALARS, "x": JSON})
ENVELOPE = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["api.data.in", "other"]) | SCALARS,
        "ver": st.just("v2") | SCALARS,
        "ts": st.just("1711966306164") | SCALARS,
        "params": st.fixed_dictionaries({}, optional={"msgid": st.text(max_size=12) | SCALARS, "extra": SCALARS}) | SCALARS,
        "data": EVENT | st.lists(EVENT, max_size=4) | JSON,
        "unknown": JSON,
    },
)  # fmt: skip


@pytest.fixture(scope="module")
def ingestor(tmp_path_factory: pytest.TempPathFactory) -> Ingestor:
    path = tmp_path_factory.mktemp("registry") / "topics.yaml"
    write_registry(path, [{"id": "example", "entry_topic": "t", "schema": str(EXAMPLE_SCHEMA), "key": "eid"}])
    return Ingestor(load_registry(path), max_batch_events=3)


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        prepared = call()
    except IngestError as error:
        return "refused", (type(error).__name__, error.message)
    return "accepted", [(key, orjson.loads(value)["event"]) for key, value, _ in prepared.records]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=ENVELOPE)
def test_the_raw_and_the_parsed_paths_decide_alike(ingestor: Ingestor, doc: dict[str, Any]) -> None:
    body = orjson.dumps(doc)
    raw = ingestor.prepare_raw("example", body)
    parsed = _outcome(lambda: ingestor.prepare("example", orjson.loads(body)))
    whole = _outcome(lambda: ingestor.prepare_body("example", body))
    assert whole == parsed
    if raw is not None:
        assert parsed == _outcome(lambda: raw)


SCHEMA = json.loads(Path(EXAMPLE_SCHEMA).read_text())


@settings(max_examples=400, deadline=None)
@given(instance=EVENT | JSON)
def test_the_validator_agrees_with_jsonschema_and_words_each_failure_as_ajv(instance: Any) -> None:
    message = SchemaValidator(SCHEMA).first_error(instance)
    assert (message is None) == jsonschema.Draft7Validator(SCHEMA).is_valid(instance)
    if message is not None:
        assert message.startswith("#")
        assert " should " in message


@given(
    written=st.lists(
        st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")), max_size=30
    ),
    limit=st.integers(10, 80),
)
def test_jsonl_lines_come_back_numbered_and_long_ones_are_dropped(written: list[bytes], limit: int) -> None:
    got = list(lines(io.BytesIO(b"\n".join(written) + b"\n" if written else b""), limit))
    assert [n for n, _ in got] == list(range(1, len(written) + 1))
    assert [line for _, line in got] == [w if len(w) <= limit else None for w in written]


CELL = st.text(alphabet=string.ascii_letters + string.digits + ' ,"\n', max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(2, 5).flatmap(
        lambda width: st.lists(st.lists(CELL, min_size=width, max_size=width), min_size=1, max_size=10)
    )
)
def test_csv_rows_come_back_as_written(rows: list[list[str]]) -> None:
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    assert [cells for _, cells in csv_rows(io.BytesIO(text.getvalue().encode()))] == rows


COERCER = Coercer({"n": {"type": "integer"}, "x": {"type": "number"}})


@given(value=st.integers(-(2**53), 2**53))
def test_an_integer_cell_coerces_to_its_value(value: int) -> None:
    assert COERCER.value("n", str(value)) == value


@given(value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_a_number_cell_coerces_to_its_value(value: float) -> None:
    assert COERCER.value("x", repr(value)) == value


KEY = b"k" * 32


@given(import_id=st.text(string.ascii_lowercase + string.digits + "_", min_size=1, max_size=30), at=st.integers(0, 2**40),
       where=st.integers(0, 200), to=st.characters())  # fmt: skip
def test_an_upload_token_survives_no_change(import_id: str, at: int, where: int, to: str) -> None:
    token = sign(KEY, import_id, now_s=at)
    verify(KEY, token, import_id, now_s=at)
    changed = token[: where % len(token)] + to + token[where % len(token) + 1 :]
    if changed != token:
        with pytest.raises(Forbidden):
            verify(KEY, changed, import_id, now_s=at)
