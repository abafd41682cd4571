"""The servers a test run starts are stopped when the run is killed by a signal (no finaliser runs)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.support.kafka import ROOT
from tests.support.proc import running

pytestmark = pytest.mark.integration

_OWNER = """
import os, sys, time
from tests.support.proc import stop_when_gone
stop_when_gone(os.getpid(), ["kill", "-TERM", sys.argv[1]])
print("watching", flush=True)
time.sleep(600)
"""


def test_a_server_is_stopped_when_its_owner_is_killed() -> None:
    # The server stands for the broker or PostgreSQL: detached, as kafka.sh and pg_ctl start them.
    with (
        subprocess.Popen(["sleep", "600"], start_new_session=True) as server,
        subprocess.Popen(
            [sys.executable, "-c", _OWNER, str(server.pid)], stdout=subprocess.PIPE, cwd=ROOT
        ) as owner,
    ):
        try:
            assert owner.stdout is not None
            assert owner.stdout.readline() == b"watching\n"
            time.sleep(1.5)
            assert server.poll() is None, "stopped while its owner was still running"
            owner.send_signal(signal.SIGKILL)
            owner.wait(5)
            assert server.wait(timeout=10) == -signal.SIGTERM
        finally:
            for proc in (owner, server):
                if running(proc.pid):
                    proc.kill()
