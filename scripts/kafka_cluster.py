"""A local Kafka cluster of several KRaft nodes on 127.0.0.1 (each a broker and a controller), for
tests of what one broker cannot show: replication, a broker lost and back. ``scripts/kafka.sh``
runs it when ``KAFKA_LOCAL_BROKERS`` is more than 1; it uses kafka.sh's jars and Java.

    python3 scripts/kafka_cluster.py up|down|status|kill N|start N

Node N (1-based) listens on KAFKA_LOCAL_PORT + N - 1 (clients) and that + 1000 (controller); its
data is under KAFKA_DATA_DIR/node-N. Topics default to replication factor 3 (at most the node
count) and min.insync.replicas 2. Standard library only: it runs before any virtualenv exists.
"""

# Every command run here is this project's own (kafka.sh, its Java, its jars).
# ruff: noqa: S603

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KAFKA_SH = HERE / "kafka.sh"


class Cluster:
    def __init__(self) -> None:
        self.size = int(os.environ.get("KAFKA_LOCAL_BROKERS", "3"))
        self.port = int(os.environ.get("KAFKA_LOCAL_PORT", "9092"))
        default = Path.cwd() / ".run" / f"kafka-cluster-{self.port}"
        self.data = Path(os.environ.get("KAFKA_DATA_DIR") or default)
        self.timeout_s = float(os.environ.get("KAFKA_START_TIMEOUT", "120"))

    def ports(self, node: int) -> tuple[int, int]:
        return self.port + node - 1, self.port + node - 1 + 1000

    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.ports(n)[0]}" for n in self.nodes())

    def nodes(self) -> range:
        return range(1, self.size + 1)

    def node_dir(self, node: int) -> Path:
        return self.data / f"node-{node}"

    def _kafka(self, command: str) -> str:
        out = subprocess.run([str(KAFKA_SH), command], check=True, capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]

    def _config(self, node: int) -> Path:
        port, cport = self.ports(node)
        voters = ",".join(f"{n}@127.0.0.1:{self.ports(n)[1]}" for n in self.nodes())
        replicas = min(3, self.size)
        isr = min(2, replicas)
        props = f"""process.roles=broker,controller
node.id={node}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={self.node_dir(node) / "logs"}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor={replicas}
min.insync.replicas={isr}
offsets.topic.replication.factor={replicas}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={isr}
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={isr}
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
# A broker lost is fenced, and its partitions led elsewhere, within seconds.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
replica.lag.time.max.ms=10000
"""
        path = self.node_dir(node) / "server.properties"
        path.write_text(props, encoding="utf-8")
        return path

    def _pid(self, node: int) -> int | None:
        try:
            pid = int((self.node_dir(node) / "kafka.pid").read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def up(self) -> None:
        libs = self._kafka("fetch")
        java = self._kafka("java")
        cluster_file = self.data / "cluster-id"
        self.data.mkdir(parents=True, exist_ok=True)
        if not cluster_file.exists():
            cid = subprocess.run(
                [java, "-cp", f"{libs}/*", "kafka.tools.StorageTool", "random-uuid"], check=True,
                capture_output=True, text=True,
            ).stdout.strip()  # fmt: skip
            cluster_file.write_text(cid)
        for node in self.nodes():
            self.start(node, libs, java)
        self._wait_ready()
        print(
            f"kafka_cluster.py: {self.size} nodes up on {self.bootstrap()} (data {self.data})",
            file=sys.stderr,
        )

    def start(self, node: int, libs: str | None = None, java: str | None = None) -> None:
        if self._pid(node) is not None:
            return
        libs = libs or self._kafka("fetch")
        java = java or self._kafka("java")
        self.node_dir(node).mkdir(parents=True, exist_ok=True)
        config = self._config(node)
        if not (self.node_dir(node) / "logs" / "meta.properties").exists():
            subprocess.run(
                [java, "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format", "--ignore-formatted",
                 "--cluster-id", (self.data / "cluster-id").read_text().strip(), "--config", str(config)],
                check=True, capture_output=True,
            )  # fmt: skip
        heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m").split()
        log = (self.node_dir(node) / "kafka.log").open("ab")
        proc = subprocess.Popen(
            [java, *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{libs}/*", "kafka.Kafka", str(config)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        (self.node_dir(node) / "kafka.pid").write_text(str(proc.pid))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        for node in self.nodes():
            port = self.ports(node)[0]
            while subprocess.run(
                [sys.executable, str(HERE / "kafka_ready.py"), "127.0.0.1", str(port)]
            ).returncode:
                if time.monotonic() > deadline:
                    raise SystemExit(f"kafka_cluster.py: node {node} not up after {self.timeout_s:.0f}s")
                if self._pid(node) is None:
                    raise SystemExit(
                        f"kafka_cluster.py: node {node} exited; see {self.node_dir(node) / 'kafka.log'}"
                    )
                time.sleep(0.3)

    def kill(self, node: int) -> None:
        """SIGKILL: the node is lost as in a crash, its data kept."""
        pid = self._pid(node)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while self._pid(node) is not None:
                time.sleep(0.05)

    def down(self) -> None:
        for node in self.nodes():
            pid = self._pid(node)
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for node in self.nodes():
            while (pid := self._pid(node)) is not None:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)


def main(argv: list[str]) -> int:
    cluster = Cluster()
    command = argv[1] if len(argv) > 1 else ""
    if command == "up":
        cluster.up()
    elif command == "down":
        cluster.down()
    elif command == "status":
        for node in cluster.nodes():
            pid = cluster._pid(node)
            state = f"running (pid {pid})" if pid else "stopped"
            print(f"node {node}: {state} on 127.0.0.1:{cluster.ports(node)[0]}")
    elif command in ("kill", "start") and len(argv) == 3:
        node = int(argv[2])
        if command == "kill":
            cluster.kill(node)
        else:
            cluster.start(node)
            cluster._wait_ready()
    else:
        print("usage: kafka_cluster.py up|down|status|kill N|start N", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
