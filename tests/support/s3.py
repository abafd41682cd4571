"""A real S3-compatible server for the tests: versitygw (Versity's S3 gateway, Apache 2.0) over a
directory, built once from the Go module proxy with the machine's Go and cached under
``~/.cache/ingest-tools`` (as ``make chart`` builds helm). ``S3_TEST_ENDPOINT`` (with
``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``) points the tests at another server instead."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.support.kafka import free_port_pair

VERSION = "v1.8.0"
TOOLS = Path.home() / ".cache" / "ingest-tools"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The variables every AWS client (ours included) reads."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": "us-east-1",
        }  # fmt: skip


class NoS3(RuntimeError):
    """No server could be had (no Go to build one): the reason."""


def versitygw() -> Path:
    """The versitygw binary, built now if it is not cached; raises NoS3 without Go."""
    binary = TOOLS / "bin" / "versitygw"
    stamp = TOOLS / "bin" / f".versitygw-{VERSION}"
    if binary.exists() and stamp.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise NoS3("no Go to build versitygw with (Debian: apt-get install golang-go)")
    env = {
        **os.environ, "GOBIN": str(TOOLS / "bin"), "GOPATH": str(TOOLS / "go"),
        "GOMODCACHE": str(TOOLS / "go" / "pkg" / "mod"), "GOCACHE": str(TOOLS / "go-build"),
    }  # fmt: skip
    subprocess.run(
        [go, "install", f"github.com/versity/versitygw/cmd/versitygw@{VERSION}"],
        env=env,
        check=True,
        timeout=1200,
    )
    stamp.touch()
    return binary


class LocalS3:
    """versitygw on a free loopback port, storing objects under ``root`` (metadata beside them)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port_pair()
        self.server = S3Server(f"http://127.0.0.1:{self.port}", "ingest-test", uuid.uuid4().hex)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "meta").mkdir(parents=True, exist_ok=True)
        log = self._log = (self.root / "versitygw.log").open("ab")
        self._proc = subprocess.Popen(
            [str(versitygw()), "--port", f"127.0.0.1:{self.port}", "--access", self.server.access_key,
             "--secret", self.server.secret_key, "posix", "--sidecar", str(self.root / "meta"), str(self.root / "data")],
            stdout=log, stderr=log,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"versitygw did not start: see {self.root / 'versitygw.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
