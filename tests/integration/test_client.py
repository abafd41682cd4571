"""The Python client against the real gateway, Kafka and store: 100,000 events through a broker
outage stored exactly once, the gateway's 429s waited out, a batch's bad event named or split off,
and ``ingest-send`` on a 100,000-line file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ingest_client import AsyncIngestClient, SendError

from ingest_core.auth import parse_principals
from tests.support.gateway import EXAMPLE_SCHEMA, running_gateway
from tests.support.kafka import ROOT, LocalBroker, free_port_pair, unique
from tests.support.sink import running_sink
from tests.support.store import wait_for_rows

pytestmark = pytest.mark.integration


def dataset(topic: str, **more: Any) -> dict[str, Any]:
    return {"id": "example", "entry_topic": topic, "schema": str(EXAMPLE_SCHEMA), "key": "eid", **more}


def numbers(rows: list[dict[str, Any]]) -> list[int]:
    return sorted(
        int((json.loads(r["event"]) if isinstance(r["event"], str) else r["event"])["n"]) for r in rows
    )


async def test_100000_events_through_a_broker_outage_are_stored_exactly_once(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka", free_port_pair())
    await asyncio.to_thread(broker.start)
    total = 100_000
    store_url = f"sqlite:///{tmp_path / 'rows.db'}"
    try:
        async with running_gateway(
            broker.bootstrap, [dataset(unique("client"))], tmp_path, delivery_timeout_ms=3000
        ) as gw:
            url = f"http://{gw.host}:{gw.port}"
            async with AsyncIngestClient(url, max_retry_s=120, max_buffer_events=20_000) as client:

                async def outage() -> None:
                    while client.counters.sent < total // 3:  # noqa: ASYNC110 (the client's own counter)
                        await asyncio.sleep(0.05)
                    os.kill(int((broker.data_dir / "kafka.pid").read_text()), signal.SIGKILL)
                    await asyncio.sleep(10)
                    await asyncio.to_thread(broker.start)

                breaking = asyncio.create_task(outage())
                for n in range(total):
                    await client.send("example", {"eid": f"e{n % 50}", "n": n})
                await client.flush()
                await breaking
            counters = client.counters
            async with running_sink(broker.bootstrap, gw.registry, store_url, batch_size=5000):
                rows = await wait_for_rows(store_url, total, timeout_s=180)
                await asyncio.sleep(2)  # anything stored twice would be by now
                rows = await wait_for_rows(store_url, total, timeout_s=1)
    finally:
        await asyncio.to_thread(broker.stop)
    assert (counters.sent, counters.failed) == (total, 0)
    assert counters.retried > 0  # the outage was felt
    assert numbers(rows) == list(range(total))  # each once: none lost, none doubled


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def test_the_gateways_429s_are_waited_out(kafka_bootstrap: str, tmp_path: Path) -> None:
    principals = parse_principals(
        {"principals": [{"id": "slow", "key_sha256": _sha("k-slow"), "permissions": ["ingest"],
                         "limits": {"requests_per_s": 2, "requests_burst": 1}}]},
        Path("auth.yaml"),
    )  # fmt: skip
    async with running_gateway(
        kafka_bootstrap, [dataset(unique("limited"), public=False)], tmp_path, principals=principals
    ) as gw:
        url = f"http://{gw.host}:{gw.port}"
        started = time.monotonic()
        async with AsyncIngestClient(url, "k-slow", max_in_flight=1) as client:
            for n in range(5):
                await client.send_batch("example", [{"eid": "e", "n": n}])
        elapsed = time.monotonic() - started
    assert (client.counters.sent, client.counters.failed) == (5, 0)
    assert client.counters.retried >= 3
    assert elapsed >= 2.0  # five requests at two a second, one at once: told to wait, it waited


async def test_a_bad_event_is_named_and_split_sends_the_rest(kafka_bootstrap: str, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'rows.db'}"
    events = [{"eid": "a", "n": 0}, {"eid": 5, "n": 1}, {"eid": "c", "n": 2}]
    async with running_gateway(kafka_bootstrap, [dataset(unique("split"))], tmp_path) as gw:
        url = f"http://{gw.host}:{gw.port}"
        async with AsyncIngestClient(url) as client:
            with pytest.raises(SendError) as refused:
                await client.send_batch("example", events)
        async with AsyncIngestClient(url, on_invalid="split") as splitting:
            futures = [await splitting.send("example", e) for e in events]
            await splitting.flush()
        async with running_sink(kafka_bootstrap, gw.registry, store_url):
            rows = await wait_for_rows(store_url, 2, timeout_s=60)
    assert (refused.value.status, refused.value.code, refused.value.index) == (
        400,
        "DATA_INGESTION_INVALID_INPUT",
        1,
    )
    assert "data[1]" in refused.value.message
    assert [f.exception() is None for f in futures] == [True, False, True]
    assert numbers(rows) == [0, 2]


async def test_ingest_send_on_a_100000_line_file(kafka_bootstrap: str, tmp_path: Path) -> None:
    total = 100_000
    lines = tmp_path / "events.jsonl"
    lines.write_text("".join(json.dumps({"eid": f"e{n % 20}", "n": n}) + "\n" for n in range(total)))
    store_url = f"sqlite:///{tmp_path / 'rows.db'}"
    async with running_gateway(kafka_bootstrap, [dataset(unique("cli"))], tmp_path) as gw:
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ingest_client.cli", "example", str(lines), "--url", f"http://{gw.host}:{gw.port}"],
            capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
        )  # fmt: skip
        async with running_sink(kafka_bootstrap, gw.registry, store_url, batch_size=5000):
            rows = await wait_for_rows(store_url, total, timeout_s=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"sent: {total}\n" in run.stderr
    assert "failed: 0\n" in run.stderr
    assert "ev/s" in run.stderr  # the progress bar
    assert numbers(rows) == list(range(total))


async def test_the_readmes_example_runs_as_written(kafka_bootstrap: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Sending events from Python", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    async with running_gateway(kafka_bootstrap, [dataset(unique("readme"), public=True)], tmp_path) as gw:
        code = example.replace("http://127.0.0.1:8080", f"http://{gw.host}:{gw.port}")
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "sent=10000, failed=0" in run.stdout, run.stdout
