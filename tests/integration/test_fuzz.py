"""schemathesis against the served ``/openapi.json``, every route, with the gateway on real Kafka:
no answer is a 5xx, and every answer's status, content type, headers and body conform to the
document. ``FUZZ_EXAMPLES`` examples a route (300 in ``make test``; ``make fuzz`` runs more)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingest_core.auth import digest
from tests.integration.test_gateway_process import wait_ready
from tests.support.gateway import gateway_process
from tests.support.kafka import ROOT, free_port_pair, unique

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
SECRET = "fuzz-secret"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"
CONFIG = ROOT / "tests" / "fuzz" / "schemathesis.toml"
ST = Path(sys.executable).parent / "st"  # the CLI of the venv running the tests


async def test_every_route_answers_as_documented_to_generated_requests(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    auth = tmp_path / "auth.yaml"
    auth.write_text(
        yaml.safe_dump(
            {"principals": [{"id": "dev", "key_sha256": digest(SECRET).hex(), "permissions": [
                "ingest", "source-import", "entity-import", "import", "run-import"]}]}
        )
    )  # fmt: skip
    more = {
        "sources": [{"id": "your_id", "topic": unique("fuzz.source")}],
        "types": [{"type": "user", "topic": unique("fuzz.user"), "schema": str(ROOT / "schemas/types/user.json")}],
        "entities": [{"id": "customers", "topic": unique("fuzz.entity"), "schema": str(ROOT / "schemas/entities/customers.json")}],
    }  # fmt: skip
    port = free_port_pair()
    proc, _topic, log = gateway_process(
        kafka_bootstrap, tmp_path, port, more, AUTH_FILE=str(auth), JOBS_TOPIC=unique("fuzz.jobs")
    )
    try:
        await wait_ready(port)
        run = await asyncio.to_thread(
            subprocess.run,
            [str(ST), "--config-file", str(CONFIG), "run", f"http://127.0.0.1:{port}/openapi.json",
             "--max-examples", str(EXAMPLES), "--checks", CHECKS,
             "-H", f"X-API-KEY: {SECRET}", "-H", f"Authorization: Bearer {SECRET}",
             "-H", "X-User-Id: dev", "-H", f"X-Auth-Token: {SECRET}"],
            capture_output=True, text=True, timeout=1800, cwd=tmp_path, check=False,
        )  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    summary = run.stdout[-6000:]
    print(summary[-1500:])
    assert run.returncode == 0, summary
    assert "passed" in summary
    assert "Traceback" not in log.read_text(), log.read_text()[-5000:]
