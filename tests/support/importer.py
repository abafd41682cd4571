"""The import worker as a real process (``python -m consumers.importer``), for the import tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.kafka import ROOT


@contextmanager
def importer_process(
    bootstrap: str,
    tmp_path: Path,
    store_url: str,
    jobs_topic: str,
    port: int,
    blob_store_url: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The worker on ``tmp_path``'s registry and uploads; stopped with SIGTERM (killed after 40 s)."""
    env = {
        **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPICS_FILE": str(tmp_path / "topics.yaml"),
        "STORE_URL": store_url, "JOBS_TOPIC": jobs_topic, "IMPORTER_GROUP": f"g-{jobs_topic}",
        "IMPORTER_PORT": str(port), "UPLOAD_DIR": str(tmp_path / "uploads"), "LOG_LEVEL": "info",
        **({"BLOB_STORE_URL": blob_store_url} if blob_store_url else {}),
    }  # fmt: skip
    log = (tmp_path / "importer.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "consumers.importer"], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
