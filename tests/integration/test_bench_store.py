"""The bench's store-alone scenario (``bench.store``) on real SQLite and real PostgreSQL: it writes
every row of the sink's backlog, each as the sink would, before it reports a rate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import yaml

from bench.payloads import backlog_value
from tests.support.kafka import ROOT
from tests.support.store import fetch_rows

ROWS = 12_000  # three batches of the sink's 5,000: one to warm up, two timed
TOPIC = "bench.store.test"


def _registry(tmp_path: Path) -> Path:
    path = tmp_path / "topics.yaml"
    schema = ROOT / "schemas" / "datasets" / "example.json"
    doc = {
        "datasets": [
            {"id": "example", "entry_topic": TOPIC, "schema": str(schema), "key": "eid", "public": True}
        ]
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(url: str, registry: Path, *extra: str) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.store", url, str(registry), TOPIC, str(ROWS), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rate: float = orjson.loads(out.stdout.strip().splitlines()[-1])["events_per_s"]
    return rate


def _assert_the_backlog_written(rows: list[dict[str, object]]) -> None:
    assert len(rows) == ROWS
    by_id = {r["event_id"]: r for r in rows}
    assert set(by_id) == {f"b{i // 1000}:{i % 1000}" for i in range(ROWS)}
    for i in (0, 4_999, 11_999):
        row, record = by_id[f"b{i // 1000}:{i % 1000}"], orjson.loads(backlog_value(i))
        event = row["event"] if isinstance(row["event"], dict) else orjson.loads(str(row["event"]))
        assert (row["dataset"], row["msgid"], row["topic"]) == ("example", "bench-0001", TOPIC)
        assert (row["partition"], row["offset"]) == (i % 3, i // 3)
        assert event == record["event"]


async def test_the_store_alone_writes_every_row_of_the_backlog(store_url: str, tmp_path: Path) -> None:
    assert _run(store_url, _registry(tmp_path)) > 0
    _assert_the_backlog_written(await fetch_rows(store_url))


async def test_postgres_own_copy_writes_every_row_of_the_backlog(postgres_url: str, tmp_path: Path) -> None:
    assert _run(postgres_url, _registry(tmp_path), "copy") > 0
    _assert_the_backlog_written(await fetch_rows(postgres_url))


def test_too_few_rows_for_a_warm_up_is_an_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.store", f"sqlite:///{tmp_path}/x.db", str(_registry(tmp_path)), TOPIC, "10"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert out.returncode != 0
    assert "at least two batches" in out.stderr


def test_copy_on_sqlite_is_an_error_naming_why(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.store", f"sqlite:///{tmp_path}/x.db", str(_registry(tmp_path)), TOPIC, str(ROWS), "copy"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert out.returncode != 0
    assert "copy measures PostgreSQL's own COPY: sqlite has none" in out.stderr
