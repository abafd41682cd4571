"""SIGHUP to the sink and the import worker (real processes): the registry is read again, and a
new dataset's topic is consumed, a new type's lines imported, without a restart; a bad file is
refused and the program goes on with the old one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ingest_core.kafka import TopicSpec, ensure_topics
from tests.integration.test_jsonl_import import Setup, new_import, until_done, upload
from tests.support.gateway import EXAMPLE_SCHEMA, envelope, running_gateway, write_registry
from tests.support.kafka import ROOT, free_port_pair, unique
from tests.support.store import wait_for_rows

pytestmark = pytest.mark.integration


def _start_sink(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "consumers.sink"], env=env, cwd=ROOT, stdout=log, stderr=log
        )


async def test_the_sink_consumes_a_new_datasets_topic_after_sighup(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    first = {"id": "example", "entry_topic": unique("reload.a"), "schema": str(EXAMPLE_SCHEMA)}
    second = {"id": "orders", "entry_topic": unique("reload.b")}
    await asyncio.to_thread(
        ensure_topics,
        kafka_bootstrap,
        [TopicSpec(first["entry_topic"], 3), TopicSpec(second["entry_topic"], 3)],
    )
    registry = write_registry(tmp_path / "topics.yaml", [first])
    store_url = f"sqlite:///{tmp_path / 'rows.db'}"
    env = {
        **os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPICS_FILE": str(registry), "STORE_URL": store_url,
        "SINK_GROUP": unique("sink-reload"), "SINK_PORT": str(free_port_pair()), "DLQ_TOPIC": unique("dlq"),
    }  # fmt: skip
    sink = _start_sink(env, tmp_path / "sink.log")
    try:
        (tmp_path / "gw").mkdir()
        async with running_gateway(kafka_bootstrap, [first, second], tmp_path / "gw") as gw:
            assert (await gw.post("example", envelope({"eid": "a"}, msgid="before")))[0] == 200
            assert len(await wait_for_rows(store_url, 1, timeout_s=60)) == 1
            # A bad file first: refused, the sink goes on.
            await asyncio.to_thread(registry.write_text, "datasets: [ {id: ", "utf-8")
            sink.send_signal(signal.SIGHUP)
            await asyncio.sleep(1)
            assert sink.poll() is None
            await asyncio.to_thread(write_registry, registry, [first, second])
            sink.send_signal(signal.SIGHUP)
            assert (await gw.post("orders", envelope({"n": 1}, msgid="after")))[0] == 200
            rows = await wait_for_rows(store_url, 2, timeout_s=60)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=60)
    assert sorted(r["dataset"] for r in rows) == ["example", "orders"]
    text = (tmp_path / "sink.log").read_text()
    assert "configuration reload refused, the old configuration stays in force" in text
    assert "configuration reloaded" in text


async def test_the_importer_imports_a_new_types_lines_after_sighup(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    s = Setup(kafka_bootstrap, tmp_path)
    order_topic = unique("import.order")
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, [TopicSpec(order_topic, 3)])
    lines = b'{"type": "order", "data": {"id": 1}}\n{"type": "order", "data": {"id": 2}}\n'
    async with s.gateway() as gw:
        with s.importer() as proc:
            await asyncio.sleep(2)
            registry = tmp_path / "topics.yaml"
            await asyncio.to_thread(
                write_registry, registry, [], types=[*s.types, {"type": "order", "topic": order_topic}]
            )
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1)
            import_id, path = await new_import(gw)
            assert (await upload(gw, path, lines))[0] == 200
            final, _ = await until_done(gw, import_id, s.store_url)
    assert final["import_status"] == "COMPLETE", final
    assert final["counts"] == {"total": 2, "imported": 2, "failed": 0}
