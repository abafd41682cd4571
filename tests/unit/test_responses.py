"""The response envelope: fields, formats, fresh ids."""

from __future__ import annotations

import re
import time
import uuid

import orjson
import pytest

from gateway import responses
from gateway.errors import DatasetNotFound, KafkaUnavailable
from gateway.responses import error_body, success_body

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


def test_success_envelope() -> None:
    body = orjson.loads(success_body("m-1"))
    assert list(body) == ["id", "ver", "ts", "params", "responseCode", "result"]
    assert body["id"] == "api.data.in"
    assert body["ver"] == "v2"
    assert TS.match(body["ts"]), body["ts"]
    assert body["params"]["status"] == "SUCCESS"
    assert body["params"]["msgid"] == "m-1"
    assert uuid.UUID(body["params"]["resmsgid"]).version == 4
    assert body["responseCode"] == "OK"
    assert body["result"] == {"message": "Data ingested successfully"}


@pytest.mark.parametrize(
    "msgid", ["m-1", 'a "quoted" one', "back\\slash / slash", "tab\tnew\nline\u0001", "é 😀 \u2028", ""]
)
def test_the_success_envelope_is_byte_for_byte_what_orjson_makes_of_it(msgid: str) -> None:
    body = success_body(msgid)
    parsed = orjson.loads(body)
    assert parsed["params"]["msgid"] == msgid
    assert body == orjson.dumps(parsed)


def test_resmsgid_is_new_per_response() -> None:
    ids = {orjson.loads(success_body("m"))["params"]["resmsgid"] for _ in range(100)}
    assert len(ids) == 100


def test_resmsgids_are_version_4_uuids_across_pool_refills() -> None:
    # 3,000 ids span a dozen draws of 256 from the random pool, and error envelopes take them too.
    ids = [orjson.loads(success_body("m"))["params"]["resmsgid"] for _ in range(3000)]
    ids += [orjson.loads(error_body(DatasetNotFound(), "m"))["params"]["resmsgid"] for _ in range(300)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_error_envelope_without_msgid() -> None:
    body = orjson.loads(error_body(DatasetNotFound(), None))
    assert body["params"].keys() == {"status", "resmsgid"}
    assert body["params"]["status"] == "FAILED"
    assert body["responseCode"] == "BAD_REQUEST"
    assert body["result"] == {}
    assert body["error"] == {"code": "DATASET_NOT_FOUND", "message": "Dataset with id not found", "trace": ""}


def test_error_envelope_with_msgid_and_retriable_code() -> None:
    body = orjson.loads(error_body(KafkaUnavailable(), "m-9"))
    assert body["params"]["msgid"] == "m-9"
    assert body["error"]["code"] == "KAFKA_UNAVAILABLE"
    assert body["responseCode"] == "SERVICE_UNAVAILABLE"


@pytest.mark.parametrize(("zone", "offset"), [("UTC", "+00:00"), ("Asia/Kolkata", "+05:30")])
def test_ts_has_a_numeric_offset_never_z(monkeypatch: pytest.MonkeyPatch, zone: str, offset: str) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    monkeypatch.setattr(responses, "_clock", responses._SecondClock())
    try:
        assert orjson.loads(success_body("m"))["ts"].endswith(offset)
    finally:
        monkeypatch.undo()
        time.tzset()
