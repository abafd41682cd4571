"""``make run`` stopped as a process manager stops it (SIGTERM to its process group) leaves nothing
running: no broker, no gateway, no sink, no importer. And a port held by something else is named."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from bench.procs import wait_http
from tests.support.kafka import KAFKA_SH, ROOT, free_port_pair
from tests.support.proc import group_members, running

pytestmark = pytest.mark.integration

TRIES = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    assert proc.poll() is None, f"make run exited with {proc.returncode} before it was ready"
    wait_http(url, timeout_s)


def test_make_run_stopped_by_sigterm_to_its_group_leaves_nothing_running(tmp_path: Path) -> None:
    kafka_port = free_port_pair()
    gateway_port, sink_port, importer_port = _free_port(), _free_port(), _free_port()
    data = tmp_path / "kafka"
    env = {
        **{k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
        "KAFKA_LOCAL_PORT": str(kafka_port),
        "KAFKA_DATA_DIR": str(data),
        "GATEWAY_PORT": str(gateway_port),
        "SINK_PORT": str(sink_port),
        "IMPORTER_PORT": str(importer_port),
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "STORE_URL": f"sqlite:///{tmp_path / 'ingest.db'}",
    }
    for attempt in range(TRIES):
        log = tmp_path / f"run-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["make", "--no-print-directory", "run"], cwd=ROOT, env=env, start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            _wait_ready(f"http://127.0.0.1:{gateway_port}/ready", proc, 180)
            _wait_ready(f"http://127.0.0.1:{sink_port}/ready", proc, 60)
            _wait_ready(f"http://127.0.0.1:{importer_port}/ready", proc, 60)
            broker_pid = int((data / "kafka.pid").read_text())
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                subprocess.run([str(KAFKA_SH), "down"], env=env, cwd=ROOT, check=False, timeout=120)
        text = log.read_text(errors="replace")
        left = [
            what
            for what, port in (
                ("broker", kafka_port),
                ("gateway", gateway_port),
                ("sink", sink_port),
                ("importer", importer_port),
            )
            if _listening(port)
        ]
        if running(broker_pid):
            left.append(f"broker pid {broker_pid}")
        assert not left, f"try {attempt + 1}: still running after the stop: {left}\n{text}"
        assert not group_members(proc.pid), f"try {attempt + 1}: processes of the run left\n{text}"
        assert "kafka.sh: stopped broker" in text, f"try {attempt + 1}:\n{text}"


def test_a_port_taken_by_another_process_is_named(tmp_path: Path) -> None:
    port = free_port_pair()
    with socket.create_server(("127.0.0.1", port)):
        env = {**os.environ, "KAFKA_LOCAL_PORT": str(port), "KAFKA_DATA_DIR": str(tmp_path / "kafka")}
        result = subprocess.run(
            [str(KAFKA_SH), "up"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
    assert result.returncode == 1
    assert f"port {port} is taken by pid {os.getpid()}" in result.stderr, result.stderr
    assert "KAFKA_LOCAL_PORT" in result.stderr, result.stderr
