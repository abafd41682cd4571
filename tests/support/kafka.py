"""Real Kafka for tests: a local single-node KRaft broker (scripts/kafka.sh), and helpers to read topics."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Message, Producer

from ingest_core.publish.rdkafka_wakeup import producer_handle
from tests.support.proc import stop_when_gone

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "scripts" / "kafka.sh"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A port p such that p (broker), p+1000 (controller) and p+2000 (its SASL listener) are free."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 2000 < 65536 and _port_free(port + 1000) and _port_free(port + 2000):
            return port
    raise RuntimeError("no free port pair found")


@dataclass
class LocalBroker:
    """One local broker; start/stop/start again keeps its data (used to test Kafka outages)."""

    data_dir: Path
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KAFKA_LOCAL_PORT": str(self.port), "KAFKA_DATA_DIR": str(self.data_dir)}

    def _run(self, command: str) -> None:
        subprocess.run([str(KAFKA_SH), command], check=True, env=self._env(), timeout=180)

    def start(self) -> None:
        # The broker is detached (setsid): stopped by the watcher if this process dies first.
        stop_when_gone(os.getpid(), [str(KAFKA_SH), "down"], self._env())
        self._run("up")

    def stop(self) -> None:
        self._run("down")


def docker_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def read_topic(bootstrap: str, topic: str, count: int, timeout_s: float = 30.0) -> list[Message]:
    """Read ``count`` records from the start of ``topic`` (fewer if the timeout passes first)."""

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("test-reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    out: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while len(out) < count and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                err = msg.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"consume error: {err}")
                if err is None:
                    out.append(msg)
    finally:
        consumer.close()
    return out


# RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER: a fatal error the idempotent producer can raise.
_OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def fail_for_good(producer: Producer, client_id: str) -> None:
    """Make librdkafka declare ``producer`` failed for good, as after a fatal idempotence error.

    Through librdkafka's own hook for testing this (``rd_kafka_test_fatal_error``: such errors come
    from a broker that lost acknowledged data, which a test cannot arrange). The producer then
    refuses every new record, fails those it queued, and reports the error to its ``error_cb``.
    """
    handle = producer_handle(producer, client_id)
    assert handle is not None, "librdkafka's handle not found"
    lib, rk = handle
    lib.rd_kafka_test_fatal_error.restype = ctypes.c_int
    lib.rd_kafka_test_fatal_error.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    assert lib.rd_kafka_test_fatal_error(rk, _OUT_OF_ORDER_SEQUENCE_NUMBER, b"failed by a test") == 0
