"""A local three-node Kafka cluster (``scripts/kafka_cluster.py``) for the tests of replication and
failover: started on free loopback ports, one node killed and started again, stopped at the end."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

from tests.support.kafka import ROOT, _port_free
from tests.support.proc import stop_when_gone

CLUSTER = ROOT / "scripts" / "kafka_cluster.py"


def free_port_block(count: int) -> int:
    """A first port of ``count`` free consecutive ports whose controller ports (+1000) are free too."""
    for _ in range(200):
        base = random.randrange(20000, 40000)
        if all(_port_free(p) and _port_free(p + 1000) for p in range(base, base + count)):
            return base
    raise RuntimeError("no free block of ports found")


class LocalCluster:
    def __init__(self, data_dir: Path, size: int = 3) -> None:
        self.size = size
        self.port = free_port_block(size)
        self._env = {
            **os.environ, "KAFKA_LOCAL_BROKERS": str(size), "KAFKA_LOCAL_PORT": str(self.port),
            "KAFKA_DATA_DIR": str(data_dir),
        }  # fmt: skip

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + i}" for i in range(self.size))

    def _run(self, *args: str) -> None:
        subprocess.run(["python3", str(CLUSTER), *args], check=True, env=self._env, timeout=240)

    def start(self) -> None:
        # The nodes are detached: stopped by the watcher if this process dies first.
        stop_when_gone(os.getpid(), ["python3", str(CLUSTER), "down"], self._env)
        self._run("up")

    def kill(self, node: int) -> None:
        self._run("kill", str(node))

    def start_node(self, node: int) -> None:
        self._run("start", str(node))

    def stop(self) -> None:
        self._run("down")
