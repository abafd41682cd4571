"""Beyond one machine: a three-node KRaft cluster (replication factor 3, min.insync.replicas 2 from
the registry). A broker SIGKILLed under a steady load of single events, then started again: every
event answered 200 is on Kafka, and every answer comes within DELIVERY_TIMEOUT_MS (200 or 503),
never a hang. Two sink processes in one group share the partitions and persist every event once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.test_gateway_process import wait_ready
from tests.support.cluster import LocalCluster
from tests.support.gateway import EXAMPLE_SCHEMA, envelope, running_gateway
from tests.support.kafka import ROOT, free_port_pair, read_topic, unique
from tests.support.sink import metric_value
from tests.support.store import count_rows, wait_for_rows

pytestmark = pytest.mark.integration

DELIVERY_TIMEOUT_MS = 5000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    local.start()
    try:
        yield local
    finally:
        local.stop()


def replicated(topic: str, partitions: int = 3) -> dict[str, object]:
    return {
        "id": "example", "entry_topic": topic, "partitions": partitions, "replication_factor": 3,
        "min_insync_replicas": 2, "schema": str(EXAMPLE_SCHEMA), "public": True,
    }  # fmt: skip


async def test_a_broker_killed_under_load_loses_no_acknowledged_event(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    topic = unique("ha")
    answers: list[tuple[str, int, float]] = []
    stop = asyncio.Event()
    async with running_gateway(
        cluster.bootstrap, [replicated(topic)], tmp_path, delivery_timeout_ms=DELIVERY_TIMEOUT_MS
    ) as gw:

        async def client(n: int) -> None:
            i = 0
            while not stop.is_set():
                msgid = f"c{n}-{i}"
                start = time.perf_counter()
                status, _, _ = await gw.post("example", envelope({"eid": "ha"}, msgid=msgid))
                answers.append((msgid, status, time.perf_counter() - start))
                i += 1

        clients = [asyncio.create_task(client(n)) for n in range(8)]
        await asyncio.sleep(3)
        before_kill = len(answers)
        await asyncio.to_thread(cluster.kill, 2)
        await asyncio.sleep(8)
        await asyncio.to_thread(cluster.start_node, 2)
        await asyncio.sleep(4)
        stop.set()
        await asyncio.gather(*clients)
    statuses = {status for _, status, _ in answers}
    assert statuses <= {200, 503}, statuses
    slowest = max(seconds for _, _, seconds in answers)
    assert slowest < DELIVERY_TIMEOUT_MS / 1000 + 2.5, slowest  # answered in time, never a hang
    accepted = {msgid for msgid, status, _ in answers if status == 200}
    assert before_kill > 100
    assert len(accepted) > before_kill  # requests went on being accepted after the broker was lost
    records = await asyncio.to_thread(read_topic, cluster.bootstrap, topic, len(accepted), 60)
    on_kafka = {dict(m.headers() or [])["msgid"].decode() for m in records}  # type: ignore[union-attr]
    assert accepted <= on_kafka, sorted(accepted - on_kafka)[:10]


def sink_process(
    cluster: LocalCluster, registry: Path, store_url: str, group: str, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap, "TOPICS_FILE": str(registry), "STORE_URL": store_url,
        "SINK_GROUP": group, "SINK_PORT": str(port), "DLQ_TOPIC": unique("dlq"),
    }  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "consumers.sink"], env=env, cwd=ROOT, stdout=out, stderr=out
        )


async def metric(port: int, name: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as r:
        return metric_value(await r.text(), name)


async def test_two_sinks_in_one_group_share_the_partitions_and_store_each_event_once(
    cluster: LocalCluster, tmp_path: Path, postgres_url: str
) -> None:
    topic = unique("shared")
    group, ports = unique("sinks"), (free_port_pair(), free_port_pair())
    async with running_gateway(cluster.bootstrap, [replicated(topic, 6)], tmp_path) as gw:
        registry = gw.registry.path
        sinks = [
            sink_process(cluster, registry, postgres_url, group, port, tmp_path / f"sink{n}.log")
            for n, port in enumerate(ports)
        ]
        try:
            for port in ports:
                await wait_ready(port)
            await asyncio.sleep(3)  # the group's rebalance: each sink takes its share of the 6 partitions
            for i in range(100):
                events = [
                    {"eid": f"s{i}-{n}"} for n in range(100)
                ]  # keyed by eid: spread over the partitions
                status, _, body = await gw.post("example", envelope(events, msgid=f"b{i}"))
                assert status == 200, body
            rows = await wait_for_rows(postgres_url, 10_000, timeout_s=120)
            await asyncio.sleep(2)  # anything stored twice would be there by now
            assert await count_rows(postgres_url) == 10_000
            assert len({r["event_id"] for r in rows}) == 10_000
            assert len({r["partition"] for r in rows}) == 6
            consumed = [await metric(port, "sink_records_consumed_total") for port in ports]
            assert all(c > 0 for c in consumed), consumed  # each took a share
            assert sum(consumed) >= 10_000
        finally:
            for sink in sinks:
                sink.send_signal(signal.SIGTERM)
            for sink in sinks:
                sink.wait(timeout=60)
