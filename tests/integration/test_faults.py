"""Faults under a steady load, counted: the broker SIGKILLed for 10 s and started again, and the
gateway itself SIGKILLed. Every answer is 200 or 503 within DELIVERY_TIMEOUT_MS plus 1 s, the
gateway recovers by itself, every msgid answered 200 is on Kafka, and the outage takes a bounded
number of log lines."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.integration.test_gateway_process import wait_ready
from tests.support.gateway import envelope, gateway_process
from tests.support.kafka import LocalBroker, free_port_pair, read_topic

pytestmark = pytest.mark.integration

DELIVERY_TIMEOUT_MS = 3000
CLIENTS = 16

Answer = tuple[str, int, float, float]  # msgid, status (0: no answer), sent at, seconds taken


async def load(port: int, answers: list[Answer], stop: asyncio.Event, tag: str) -> None:
    """CLIENTS clients sending single events one after another until ``stop``."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", timeout=timeout) as session:

        async def client(n: int) -> None:
            i = 0
            while not stop.is_set():
                msgid, start = f"{tag}{n}-{i}", time.monotonic()
                try:
                    async with session.post(
                        "/v2/data/in/example", json=envelope({"eid": "f"}, msgid=msgid)
                    ) as r:
                        status = r.status
                        await r.read()
                except aiohttp.ClientError:
                    status = 0
                    await asyncio.sleep(0.05)
                answers.append((msgid, status, start, time.monotonic() - start))
                i += 1

        await asyncio.gather(*(client(n) for n in range(CLIENTS)))


def on_kafka(bootstrap: str, topic: str, accepted: set[str]) -> set[str]:
    records = read_topic(bootstrap, topic, len(accepted), 60)
    return {dict(m.headers() or [])["msgid"].decode() for m in records}  # type: ignore[union-attr]


def broker_pid(broker: LocalBroker) -> int:
    return int((broker.data_dir / "kafka.pid").read_text())


async def test_a_broker_killed_for_10_s_under_load_loses_nothing_and_logs_a_few_lines(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka", free_port_pair())
    await asyncio.to_thread(broker.start)
    port = free_port_pair()
    proc, topic, log = gateway_process(
        broker.bootstrap, tmp_path, port, DELIVERY_TIMEOUT_MS=str(DELIVERY_TIMEOUT_MS)
    )
    answers: list[Answer] = []
    stop = asyncio.Event()
    try:
        await wait_ready(port)
        loading = asyncio.create_task(load(port, answers, stop, "b"))
        await asyncio.sleep(3)
        lines_before = len(log.read_text().splitlines())
        killed_at = time.monotonic()
        os.kill(broker_pid(broker), signal.SIGKILL)
        await asyncio.sleep(10)
        await asyncio.to_thread(broker.start)
        restarted_at = time.monotonic()
        lines_during = len(log.read_text().splitlines()) - lines_before
        await asyncio.sleep(5)
        stop.set()
        await loading
        accepted = {msgid for msgid, status, _, _ in answers if status == 200}
        found = await asyncio.to_thread(on_kafka, broker.bootstrap, topic, accepted)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        await asyncio.to_thread(broker.stop)
    statuses = {status for _, status, _, _ in answers}
    slowest = max(seconds for _, _, _, seconds in answers)
    after = [status for _, status, sent, _ in answers if sent > restarted_at + 1]
    print(
        f"broker outage: {len(answers)} answers, {len(accepted)} accepted, slowest {slowest:.2f} s, "
        f"{lines_during} log lines during the outage"
    )
    assert statuses <= {200, 503}, statuses
    assert slowest < DELIVERY_TIMEOUT_MS / 1000 + 1, slowest  # never a hang
    assert any(status == 503 for _, status, sent, _ in answers if killed_at < sent < restarted_at)
    assert after
    assert after.count(200) > len(after) * 0.9  # recovered by itself
    assert accepted <= found, sorted(accepted - found)[:10]
    assert lines_during <= 15, log.read_text()[-5000:]


async def test_a_gateway_killed_under_load_had_every_acknowledged_event_on_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port_pair()
    proc, topic, _log = gateway_process(kafka_bootstrap, tmp_path, port)
    answers: list[Answer] = []
    stop = asyncio.Event()
    try:
        await wait_ready(port)
        loading = asyncio.create_task(load(port, answers, stop, "g"))
        await asyncio.sleep(3)
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.sleep(1)
        stop.set()
        await loading
    finally:
        proc.kill()
        proc.wait(timeout=30)
    accepted = {msgid for msgid, status, _, _ in answers if status == 200}
    assert len(accepted) > 100
    assert any(status == 0 for _, status, _, _ in answers)  # the kill landed under load
    found = await asyncio.to_thread(on_kafka, kafka_bootstrap, topic, accepted)
    assert accepted <= found, sorted(accepted - found)[:10]
