"""Run the real gateway app in-process against real Kafka, with a registry of the test's own topics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from gateway.app import SERVER_OPTIONS, create_app
from gateway.settings import GatewaySettings
from ingest_core.auth import Principals
from ingest_core.kafka import ensure_topics
from ingest_core.registry import Registry, load_registry
from ingest_core.topics_cli import topic_specs
from tests.support.kafka import unique

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SCHEMA = ROOT / "schemas" / "datasets" / "example.json"

REFERENCE_EXAMPLE: dict[str, Any] = {
    "id": "api.data.in",
    "ver": "v2",
    "ts": "1711966306164",
    "params": {"msgid": "e180ecac-8f41-4f21-9a21-0b3a1a368917"},
    "data": {
        "eid": "INTERACT",
        "date": "2022-01-01",
        "ver": "3.0",
        "syncts": 1668591949682,
        "ets": 1668591949682,
    },
}


def envelope(data: Any, msgid: str = "m-1") -> dict[str, Any]:
    return {"id": "api.data.in", "ver": "v2", "ts": "1711966306164", "params": {"msgid": msgid}, "data": data}


def event_with_levels(levels: int) -> dict[str, Any]:
    """An event of the example dataset nesting objects ``levels`` deep, itself included."""
    deep: dict[str, Any] = {}
    for _ in range(levels - 2):
        deep = {"x": deep}
    return {"eid": "E", "deep": deep}


@dataclass
class GatewayHandle:
    session: aiohttp.ClientSession
    registry: Registry
    bootstrap: str
    host: str = "127.0.0.1"
    port: int = 0
    app: web.Application | None = None

    async def post(
        self, dataset: str, body: Any, raw: bytes | None = None
    ) -> tuple[int, dict[str, Any], Any]:
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with self.session.post(f"/v2/data/in/{dataset}", **kwargs) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)


def write_registry(path: Path, datasets: list[dict[str, Any]], **more: list[dict[str, Any]]) -> Path:
    """A registry file of ``datasets`` (and ``sources=``, ``types=``, ``entities=``); the datasets
    take anonymous requests (``public``) unless one says otherwise, as most tests send none."""
    datasets = [{"public": True, **d} for d in datasets]
    path.write_text(yaml.safe_dump({"datasets": datasets, **more}), encoding="utf-8")
    return path


@asynccontextmanager
async def running_gateway(
    bootstrap: str, datasets: list[dict[str, Any]], tmp_path: Path, sources: list[dict[str, Any]] | None = None,
    principals: Principals | None = None, types: list[dict[str, Any]] | None = None,
    entities: list[dict[str, Any]] | None = None, **overrides: Any,
) -> AsyncIterator[GatewayHandle]:  # fmt: skip
    registry = load_registry(
        write_registry(
            tmp_path / "topics.yaml",
            datasets,
            sources=sources or [],
            types=types or [],
            entities=entities or [],
        )
    )
    await asyncio.to_thread(ensure_topics, bootstrap, topic_specs(registry))
    # CI runs these tests once more with KAFKA_REPORT_WAKEUP=timer: both ways of serving reports.
    overrides.setdefault("kafka_report_wakeup", os.environ.get("KAFKA_REPORT_WAKEUP") or "pipe")
    overrides.setdefault("store_url", f"sqlite:///{tmp_path / 'jobs.db'}")
    overrides.setdefault("upload_dir", tmp_path / "uploads")
    settings = replace(
        GatewaySettings(), kafka_bootstrap_servers=bootstrap, topics_file=registry.path, **overrides
    )
    # A runner as gateway.serve makes it (aiohttp's TestServer would cancel handlers whose client
    # goes away, which the gateway's own server does not).
    app = create_app(settings, registry, principals)
    runner = web.AppRunner(app, **SERVER_OPTIONS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession(base_url=f"http://{host}:{port}") as session:
            yield GatewayHandle(session, registry, bootstrap, host, port, app)
    finally:
        await runner.cleanup()


def gateway_process(
    bootstrap: str, tmp_path: Path, port: int, more: dict[str, list[dict[str, Any]]] | None = None, **env: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """The gateway as a process of its own session, with a public ``example`` dataset on a topic of its
    own (and the registry's ``more`` sections), its topics made; its process, topic and log file."""
    topic = unique("gw")
    registry = write_registry(
        tmp_path / "topics.yaml",
        [{"id": "example", "entry_topic": topic, "schema": str(EXAMPLE_SCHEMA)}],
        **(more or {}),
    )
    full = {
        **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPICS_FILE": str(registry), "GATEWAY_PORT": str(port),
        "STORE_URL": f"sqlite:///{tmp_path / 'jobs.db'}", "UPLOAD_DIR": str(tmp_path / "uploads"),
        "UPLOAD_SIGNING_KEY": "k", **env,
    }  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "ingest_core.topics_cli", "apply"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        env=full,
    )
    log = tmp_path / f"gateway-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env=full,
            cwd=ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    return proc, topic, log
