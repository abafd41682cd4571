"""``make soak``: mixed valid and invalid traffic on every route for a bounded time, on loopback
only, with the broker SIGKILLed and started again in the middle; then it counts.

Runs its own broker, gateway, sink (SQLite) and import worker. Prints the requests sent, the
answers by class, the events acknowledged (answered 200 by data-in and the source import: those
must be stored), the events of theirs found in the store, and ``lost`` and ``duplicated`` computed
from those counts. Exits 1 when anything acknowledged is lost or stored twice, or when any answer
was a 5xx other than a 503, or when a secret of the run (the keys, the upload signing key) or an
event's payload is found in any program's log (``--log-level debug`` logs every request too).

    python -m bench.soak [--seconds 60] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import secrets
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from yarl import URL

from bench import procs
from ingest_core.auth import digest
from ingest_core.kafka import TopicSpec, ensure_topics
from ingest_core.registry import load_registry
from ingest_core.topics_cli import topic_specs
from tests.support.kafka import LocalBroker, free_port_pair

ROOT = Path(__file__).resolve().parents[1]
# Made for each run, and looked for in every program's log afterwards: none may be found.
SECRET = secrets.token_urlsafe(24)
LIMITED = secrets.token_urlsafe(24)  # a principal of 5 requests a second: its excess is 429
SIGNING_KEY = secrets.token_urlsafe(24)
MARKER = f"payload-{secrets.token_hex(12)}"  # in every event sent
KEY = {"X-API-KEY": SECRET}
BEARER = {"Authorization": f"Bearer {SECRET}"}
USER = {"X-User-Id": "soak", "X-Auth-Token": SECRET}


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.classes: Counter[str] = Counter()
        self.acknowledged: set[tuple[str, str]] = set()  # (dataset, event_id) answered 200
        self.unexpected: Counter[str] = Counter()  # 5xx other than 503, by route

    def answer(self, route: str, status: int) -> None:
        self.requests += 1
        self.classes["no answer" if status == 0 else f"{status // 100}xx"] += 1
        if status >= 500 and status != 503:
            self.unexpected[route] += 1


def envelope(msgid: str, data: Any) -> dict[str, Any]:
    return {"id": "api.data.in", "ver": "v2", "ts": "1711966306164", "params": {"msgid": msgid}, "data": data}


class Traffic:
    def __init__(self, session: aiohttp.ClientSession, tally: Tally) -> None:
        self.session = session
        self.tally = tally

    async def call(self, route: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        try:
            async with self.session.request(method, path, **kwargs) as r:
                body = await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError):
            self.tally.answer(route, 0)
            return 0, None
        self.tally.answer(route, status)
        self.tally.classes[f"{route} {status}"] += 1
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    async def data_in(self) -> None:
        msgid = uuid.uuid4().hex
        kind = random.random()
        if kind < 0.6:
            status, _ = await self.call(
                "data-in", "POST", "/v2/data/in/example", json=envelope(msgid, {"eid": "e", "note": MARKER})
            )
            if status == 200:
                self.tally.acknowledged.add(("example", msgid))
        elif kind < 0.75:
            events = [{"eid": f"e{i}", "note": MARKER} for i in range(10)]
            status, _ = await self.call(
                "data-in", "POST", "/v2/data/in/example", json=envelope(msgid, events)
            )
            if status == 200:
                self.tally.acknowledged.update(("example", f"{msgid}:{i}") for i in range(10))
        elif kind < 0.8:
            await self.call("data-in", "POST", "/v2/data/in/example", json={"id": "api.data.in"})
        elif kind < 0.85:
            await self.call("data-in", "POST", "/v2/data/in/example", json=envelope(msgid, {"eid": 5}))
        elif kind < 0.88:
            await self.call("data-in", "POST", "/v2/data/in/example", data=b"{not json")
        elif kind < 0.91:
            await self.call(
                "data-in", "POST", "/v2/data/in/private", json=envelope(msgid, {"eid": "e", "note": MARKER})
            )
        elif kind < 0.94:
            await self.call(
                "data-in", "POST", "/v2/data/in/private", json=envelope(msgid, {"eid": "e", "note": MARKER}),
                headers={"X-API-KEY": LIMITED},
            )  # fmt: skip
        else:
            await self.call(
                "data-in", "POST", "/v2/data/in/nope", json=envelope(msgid, {"eid": "e", "note": MARKER})
            )

    async def source_import(self) -> None:
        entries = [{"date": "2024-03-08 00:29:00", "name": f"n{i}", "content": MARKER} for i in range(5)]
        if random.random() < 0.8:
            status, answer = await self.call(
                "source",
                "POST",
                "/api/v1/source/import",
                json={"source_id": "soak", "payload": entries},
                headers=KEY,
            )
            if status == 200 and answer is not None:
                self.tally.acknowledged.update(("soak", f"{answer['import_id']}:{i}") for i in range(5))
        else:
            await self.call("source", "POST", "/api/v1/source/import", json={"payload": 1}, headers=KEY)

    async def jsonl_import(self) -> None:
        status, answer = await self.call("jsonl", "POST", "/v1/import", headers=BEARER)
        if status != 200 or answer is None:
            return
        lines = (
            b"\n".join(
                json.dumps({"type": "user_profile", "data": {"user_id": f"u{i}", "note": MARKER}}).encode()
                for i in range(20)
            )
            + b"\n{bad\n"
        )
        await self.call("jsonl", "PUT", URL(answer["upload_url"]).path_qs, data=lines)
        await self.call("jsonl", "GET", f"/v1/import/{answer['import_id']}", headers=BEARER)

    async def entity_import(self) -> None:
        form = aiohttp.FormData()
        form.add_field("type", "csv")
        form.add_field("mapping", json.dumps({"1": "name", "2": "email"}))
        form.add_field(
            "file", io.BytesIO(b"name,email\nAnn,ann@example.com\nBob,not-an-email\n"), filename="c.csv"
        )
        status, answer = await self.call(
            "entity",
            "POST",
            "/api/v1/entities/customers/import",
            data=form,
            headers={**BEARER, "domain": "soak"},
        )
        if status == 200 and answer is not None:
            await self.call("entity", "GET", f"/api/v1/job/{answer['data']['id']}", headers=BEARER)

    async def operations(self) -> None:
        await self.call("operations", "POST", "/api/v1/import.new", headers=USER)
        users = {
            "users": [
                {"username": f"u{uuid.uuid4().hex[:6]}", "emails": ["u@example.com"], "importIds": ["i"]}
            ]
        }
        await self.call("operations", "POST", "/api/v1/import.addUsers", json=users, headers=USER)
        await self.call("operations", "POST", "/api/v1/import.run", headers=USER)
        await self.call("operations", "GET", "/api/v1/import.status", headers=USER)
        await self.call("operations", "POST", "/api/v1/import.new")  # no credentials: 401

    async def operational(self) -> None:
        for path in ("/health", "/ready", "/metrics", "/openapi.json", "/nowhere"):
            await self.call("ops", "GET", path)

    async def one(self) -> None:
        pick = random.random()
        if pick < 0.85:
            await self.data_in()
        elif pick < 0.93:
            await self.source_import()
        elif pick < 0.95:
            await self.jsonl_import()
        elif pick < 0.97:
            await self.entity_import()
        elif pick < 0.985:
            await self.operations()
        else:
            await self.operational()


def write_config(work: Path) -> tuple[Path, Path]:
    schemas = ROOT / "schemas"
    example = str(schemas / "datasets" / "example.json")
    registry = {
        "datasets": [
            {"id": "example", "entry_topic": "soak.example", "schema": example, "key": "eid", "public": True},
            {"id": "private", "entry_topic": "soak.private", "schema": example},
        ],
        "sources": [{"id": "soak", "topic": "soak.source"}],
        "types": [
            {
                "type": "user_profile",
                "topic": "soak.profile",
                "schema": str(schemas / "types" / "user_profile.json"),
            },
            {"type": "user", "topic": "soak.user", "schema": str(schemas / "types" / "user.json")},
        ],
        "entities": [
            {
                "id": "customers",
                "topic": "soak.customers",
                "schema": str(schemas / "entities" / "customers.json"),
            }
        ],
    }
    everything = ["ingest", "source-import", "entity-import", "import", "run-import"]
    limited = {"requests_per_s": 5}
    auth = {
        "principals": [
            {"id": "soak", "key_sha256": digest(SECRET).hex(), "permissions": everything},
            {
                "id": "limited",
                "key_sha256": digest(LIMITED).hex(),
                "permissions": ["ingest"],
                "limits": limited,
            },
        ]
    }
    (work / "topics.yaml").write_text(yaml.safe_dump(registry))
    (work / "auth.yaml").write_text(yaml.safe_dump(auth))
    return work / "topics.yaml", work / "auth.yaml"


def stored(db: Path) -> Counter[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT dataset, event_id FROM records WHERE dataset IN ('example', 'soak')")
        return Counter((dataset, event_id) for dataset, event_id in rows)


def leaked(work: Path) -> int:
    """Lines of the programs' logs holding a secret of this run or a payload's marker."""
    found = 0
    for log in work.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if any(s in line for s in (SECRET, LIMITED, SIGNING_KEY, MARKER)):
                found += 1
                print(f"soak: {log.name}: {line[:300]}", file=sys.stderr)
    return found


async def soak(seconds: float, clients: int, work: Path, log_level: str) -> int:
    broker = LocalBroker(work / "kafka", free_port_pair())
    broker.start()
    started: list[Any] = []
    try:
        registry, auth = write_config(work)
        common = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "TOPICS_FILE": str(registry),
                  "STORE_URL": f"sqlite:///{work / 'soak.db'}", "UPLOAD_DIR": str(work / "uploads"),
                  "JOBS_TOPIC": "soak.jobs", "DLQ_TOPIC": "soak.dlq", "LOG_LEVEL": log_level,
                  "ACCESS_LOG": "true" if log_level == "debug" else "false"}  # fmt: skip
        specs = [*topic_specs(load_registry(registry)), TopicSpec("soak.jobs", 3), TopicSpec("soak.dlq", 1)]
        ensure_topics(broker.bootstrap, specs)
        gateway_port, sink_port, importer_port = free_port_pair(), free_port_pair(), free_port_pair()
        programs = {
            "consumers.sink": {"SINK_PORT": str(sink_port), "SINK_INSTANCE_ID": "soak-s"},
            "consumers.importer": {"IMPORTER_PORT": str(importer_port), "IMPORTER_INSTANCE_ID": "soak-i"},
            "gateway": {
                "GATEWAY_PORT": str(gateway_port), "AUTH_FILE": str(auth), "UPLOAD_SIGNING_KEY": SIGNING_KEY,
                "DELIVERY_TIMEOUT_MS": "3000", "PUBLIC_BASE_URL": f"http://127.0.0.1:{gateway_port}",
            },
        }  # fmt: skip
        for module, env in programs.items():
            started.append(procs.start(["-m", module], {**common, **env}, work / f"{module}.log"))
        base = f"http://127.0.0.1:{gateway_port}"
        for url in (
            f"{base}/ready",
            f"http://127.0.0.1:{sink_port}/ready",
            f"http://127.0.0.1:{importer_port}/ready",
        ):
            await asyncio.to_thread(procs.wait_http, url)
        tally = Tally()
        deadline = time.monotonic() + seconds
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(base, timeout=timeout) as session:
            traffic = Traffic(session, tally)

            async def client() -> None:
                while time.monotonic() < deadline:
                    await traffic.one()

            async def restart_broker() -> None:
                await asyncio.sleep(seconds / 3)
                pid = int((broker.data_dir / "kafka.pid").read_text())
                os.kill(pid, signal.SIGKILL)
                print(f"soak: broker SIGKILLed at {seconds / 3:.0f} s", file=sys.stderr)
                await asyncio.sleep(min(10.0, seconds / 6))
                await asyncio.to_thread(broker.start)
                print("soak: broker started again", file=sys.stderr)

            await asyncio.gather(restart_broker(), *(client() for _ in range(clients)))
        # Everything acknowledged is on Kafka: give the sink time to store it.
        wait_until = time.monotonic() + 120
        found = stored(work / "soak.db")
        while time.monotonic() < wait_until and not tally.acknowledged <= set(found):
            await asyncio.sleep(1)
            found = stored(work / "soak.db")
    finally:
        for proc in reversed(started):
            procs.stop(proc)
        broker.stop()
    lost = len(tally.acknowledged - set(found))
    duplicated = sum(count - 1 for count in found.values() if count > 1)
    classes = {k: v for k, v in sorted(tally.classes.items()) if " " not in k and v}
    print(f"requests: {tally.requests}")
    print(f"answers: {json.dumps(classes)}")
    by_route = {k: v for k, v in sorted(tally.classes.items()) if " " in k}
    print(f"answers by route: {json.dumps(by_route)}")
    print(f"acknowledged events: {len(tally.acknowledged)}")
    print(f"found in the store: {len(tally.acknowledged & set(found))} (rows: {sum(found.values())})")
    print(f"lost: {lost}")
    print(f"duplicated: {duplicated}")
    if tally.unexpected:
        print(f"unexpected 5xx: {dict(tally.unexpected)}")
    in_logs = leaked(work)
    print(f"log lines holding a secret or a payload: {in_logs}")
    return 1 if lost or duplicated or tally.unexpected or in_logs else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "60")))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest-soak-"))
    print(f"soak: {args.seconds:.0f} s, {args.clients} clients, work in {work}", file=sys.stderr)
    return asyncio.run(soak(args.seconds, args.clients, work, args.log_level))


if __name__ == "__main__":
    sys.exit(main())
