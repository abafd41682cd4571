"""Child processes of a benchmark: find the load generators, start, wait until they answer, read
their memory, stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Load generators and the Debian package of each.
TOOLS = {"wrk": "wrk", "h2load": "nghttp2-client"}


def tool(name: str) -> str:
    """The path of the load generator ``name``, or an error saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (Debian: apt-get install {TOOLS[name]})")
    return path


def start(
    args: list[str], env: Mapping[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def wait_http(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout_s}s")
        time.sleep(0.2)


def rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0  # exited meanwhile
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
