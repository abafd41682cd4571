"""``make bench``: every figure side by side, in one run on one machine, medians of N rounds.

1. raw producers (confluent-kafka, aiokafka): the gateway's records flat out, records/s and MB/s;
2. a bare aiohttp handler: the HTTP ceiling, req/s; and the same handler publishing the gateway's
   record of the bench's event to Kafka through the gateway's publisher before it answers: the
   bound that acknowledging only after Kafka sets on single events;
3. the gateway: single events and 100-event batches at concurrency 32 and 128, and single events
   one at a time (the latency of one acknowledged write), on uvloop and on asyncio's own loop
   (EVENT_LOOP), with aiokafka and with two workers: req/s, events/s, MB/s, p50/p99/max latency,
   errors, RSS;
4. the sink: persisted events/s on SQLite and PostgreSQL, draining a filled topic alone, and side by
   side with the gateway under 100-event batches (accepted vs persisted over the same window); and
   the bound on it: the store alone writing the same rows decoded beforehand (and PostgreSQL's own
   COPY of them);
5. how soon an accepted event is a row: single events at a modest steady rate through the gateway
   while the sink runs, each row's persisted_at less its received_at (SQLite and PostgreSQL);
6. overload: far more concurrent requests than MAX_INFLIGHT_REQUESTS (from h2load, which logs every
   request): share shed (503), latency of the shed and of the accepted apart, RSS against steady
   state, and that every 200 is on Kafka.

Prints a Markdown table and writes ``bench/results/latest.json`` (``partial.json`` with ``--only``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from bench import h2load, procs, wrk
from bench.latency import post_paced, quantile, row_delays_ms
from bench.payloads import (
    ENTITY_COLUMNS,
    backlog_value,
    body,
    source_body,
    write_entity_csv,
    write_entity_xlsx,
    write_jsonl,
)
from ingest_core.kafka import TopicSpec, ensure_topics
from tests.support.kafka import LocalBroker, free_port_pair
from tests.support.postgres import LocalPostgres, find_bindir
from tests.support.proc import children_of

RESULTS = Path(__file__).resolve().parent / "results"
Result = dict[str, float]


def median_of(samples: list[Result]) -> Result:
    """Each figure's median over the samples that have it, figure by figure (a figure may be absent
    from a sample: the overload's latencies of a status no request got)."""
    keys = dict.fromkeys(k for s in samples for k in s)
    return {k: statistics.median(s[k] for s in samples if k in s) for k in keys}


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.broker = LocalBroker(work / "kafka", free_port_pair())
        self.bootstrap = self.broker.bootstrap

    # helpers ---------------------------------------------------------------------------------

    def topic(self, prefix: str, partitions: int = 3) -> str:
        name = f"bench.{prefix}.{uuid.uuid4().hex[:8]}"
        ensure_topics(self.bootstrap, [TopicSpec(name, partitions)])
        return name

    def records_in(self, topic: str, partitions: int = 3) -> int:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "bench-counter"})
        try:
            total = 0
            for p in range(partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += high - low
            return total
        finally:
            consumer.close()

    def registry(
        self, topic: str, source_topic: str | None = None, type_topics: tuple[str, str] | None = None,
        entity_topic: str | None = None,
    ) -> Path:  # fmt: skip
        path = self.work / f"topics-{topic}.yaml"
        schema = Path(__file__).resolve().parents[1] / "schemas" / "datasets" / "example.json"
        doc: dict[str, Any] = {
            "datasets": [
                {
                    "id": "example",
                    "entry_topic": topic,
                    "partitions": 3,
                    "schema": str(schema),
                    "key": "eid",
                    "public": True,
                }
            ]
        }
        if source_topic is not None:
            doc["sources"] = [{"id": "bench", "topic": source_topic, "partitions": 3}]
        if type_topics is not None:
            profile = Path(__file__).resolve().parents[1] / "schemas" / "types" / "user_profile.json"
            doc["types"] = [
                {"type": "user_profile", "topic": type_topics[0], "schema": str(profile)},
                {"type": "transaction", "topic": type_topics[1]},
            ]
        if entity_topic is not None:
            customers = Path(__file__).resolve().parents[1] / "schemas" / "entities" / "customers.json"
            doc["entities"] = [{"id": "customers", "topic": entity_topic, "schema": str(customers)}]
        path.write_text(yaml.safe_dump(doc))
        return path

    def gateway(
        self,
        topic: str,
        env: dict[str, str] | None = None,
        source_topic: str | None = None,
        type_topics: tuple[str, str] | None = None,
        entity_topic: str | None = None,
    ) -> tuple[Any, str]:
        port = free_port_pair()
        proc = procs.start(
            ["-m", "gateway"],
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "TOPICS_FILE": str(self.registry(topic, source_topic, type_topics, entity_topic)),
                "STORE_URL": f"sqlite:///{self.work / 'jobs.db'}",
                "GATEWAY_PORT": str(port),
                "LOG_LEVEL": "warning",
                **(env or {}),
            },
            self.work / "gateway.log",
        )
        base = f"http://127.0.0.1:{port}"
        procs.wait_http(base + "/ready")
        return proc, base

    # scenarios -------------------------------------------------------------------------------

    def raw_producer(self, client: str, plain: bool = False) -> Result:
        topic = self.topic(f"raw-{client}")
        extra = ["plain"] if plain else []
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.producers",
                client,
                self.bootstrap,
                topic,
                str(self.args.seconds),
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=procs.ROOT,
            timeout=600,
        )
        if out.returncode != 0:
            raise RuntimeError(f"bench.producers {client} exited {out.returncode}:\n{out.stderr[-4000:]}")
        result: Result = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def bare(self, publish: bool = False) -> Result:
        """The bare handler; ``publish``: each body also published through the gateway's publisher,
        answered once Kafka has acknowledged it (see bench.bare)."""
        port = free_port_pair()
        topic = [self.topic("bare")] if publish else []
        proc = procs.start(
            ["-m", "bench.bare", str(port), *topic], {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}
        )
        try:
            procs.wait_http(f"http://127.0.0.1:{port}/health")
            url = f"http://127.0.0.1:{port}/v2/data/in/example"
            wrk.run(url, body(1), 32, 2)
            r = wrk.run(url, body(1), 32, self.args.seconds)
            return {"rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "rss_mib": procs.rss_mib(proc.pid)}
        finally:
            procs.stop(proc)

    def gateway_load(self, events: int, connections: int, **env: str) -> Result:
        topic = self.topic("gw")
        proc, base = self.gateway(topic, env)
        try:
            url = base + "/v2/data/in/example"
            payload = body(events)
            wrk.run(url, payload, connections, 2)  # warm-up
            r = wrk.run(url, payload, connections, self.args.seconds)
            ok = r.requests - r.non_2xx
            return {
                "rps": ok / r.seconds,
                "events_per_s": ok * events / r.seconds,
                "mb_per_s": ok * len(payload) / r.seconds / 1e6,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "max_ms": r.max_ms,
                "errors": r.non_2xx + r.socket_errors,
                "rss_mib": procs.rss_mib(proc.pid) + sum(procs.rss_mib(c) for c in children_of(proc.pid)),
            }
        finally:
            procs.stop(proc)

    def client_load(self, events: int) -> Result:
        """The Python client (``bench.client_load``, a process of its own) sending ``events`` small
        events through the gateway: events/s acknowledged, and the client's peak RSS."""
        topic = self.topic("client")
        proc, base = self.gateway(topic)
        try:
            out = subprocess.run(
                [sys.executable, "-m", "bench.client_load", base, str(events)],
                capture_output=True, text=True, timeout=900, check=True, cwd=procs.ROOT,
            )  # fmt: skip
            result: Result = json.loads(out.stdout.strip().splitlines()[-1])
            return result
        finally:
            procs.stop(proc)

    def source_import(self, entries: int, connections: int) -> Result:
        """``POST /api/v1/source/import`` of ``entries`` entries a request: entries/s acknowledged."""
        topic, source_topic = self.topic("gw"), self.topic("source")
        secret = uuid.uuid4().hex
        auth = self.work / "auth.yaml"
        key = hashlib.sha256(secret.encode()).hexdigest()
        auth.write_text(
            yaml.safe_dump(
                {"principals": [{"id": "bench", "key_sha256": key, "permissions": ["source-import"]}]}
            )
        )
        proc, base = self.gateway(topic, {"AUTH_FILE": str(auth)}, source_topic=source_topic)
        try:
            url, headers = base + "/api/v1/source/import", {"X-API-KEY": secret}
            payload = source_body(entries)
            wrk.run(url, payload, connections, 2, headers=headers)  # warm-up
            r = wrk.run(url, payload, connections, self.args.seconds, headers=headers)
            ok = r.requests - r.non_2xx
            return {
                "rps": ok / r.seconds,
                "events_per_s": ok * entries / r.seconds,
                "mb_per_s": ok * len(payload) / r.seconds / 1e6,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "max_ms": r.max_ms,
                "errors": r.non_2xx + r.socket_errors,
                "rss_mib": procs.rss_mib(proc.pid),
            }
        finally:
            procs.stop(proc)

    def jsonl_import(self, lines: int) -> Result:
        """A JSONL import of ``lines`` lines (~300 bytes, two types, one with a schema): the upload in
        MB/s, then lines/s from the upload's end to COMPLETE, and the import worker's largest RSS."""
        topic, jobs_topic = self.topic("gw"), self.topic("jobs")
        type_topics = (self.topic("import-user"), self.topic("import-tx"))
        secret = uuid.uuid4().hex
        auth = self.work / "auth.yaml"
        key = hashlib.sha256(secret.encode()).hexdigest()
        auth.write_text(
            yaml.safe_dump({"principals": [{"id": "bench", "key_sha256": key, "permissions": ["import"]}]})
        )
        shared = {
            "JOBS_TOPIC": jobs_topic,
            "UPLOAD_DIR": str(self.work / "uploads"),
            "STORE_URL": f"sqlite:///{self.work / 'jobs.db'}",
        }
        data = self.work / f"lines-{lines}.jsonl"
        if not data.exists():
            write_jsonl(data, lines)
        env = {"AUTH_FILE": str(auth), "UPLOAD_SIGNING_KEY": secret, **shared}
        gateway, base = self.gateway(topic, env, type_topics=type_topics)
        importer = self.importer(self.registry(topic, None, type_topics), shared)
        try:
            headers = {"Authorization": f"Bearer {secret}"}
            made = _json(urllib.request.Request(base + "/v1/import", method="POST", headers=headers))
            upload_url = base + "/v1/import/" + made["upload_url"].split("/v1/import/", 1)[1]
            size = data.stat().st_size
            t0 = time.perf_counter()
            with data.open("rb") as f:
                put = urllib.request.Request(
                    upload_url, data=f, method="PUT",
                    headers={"Content-Type": "application/jsonl", "Content-Length": str(size)},
                )  # fmt: skip
                _json(put)
            t1 = time.perf_counter()
            rss = 0.0
            while True:
                rss = max(rss, procs.rss_mib(importer.pid))
                status = _json(
                    urllib.request.Request(f"{base}/v1/import/{made['import_id']}", headers=headers)
                )
                if status["import_status"] in ("COMPLETE", "FAILED"):
                    break
                if time.perf_counter() - t1 > 900:
                    raise RuntimeError("the JSONL import did not finish in 15 minutes")
                time.sleep(0.1)
            t2 = time.perf_counter()
            if status["import_status"] != "COMPLETE" or status["counts"]["imported"] != lines:
                raise RuntimeError(f"the JSONL import ended {status}")
            return {
                "events_per_s": lines / (t2 - t1),
                "mb_per_s": size / (t1 - t0) / 1e6,  # the upload
                "rss_mib": rss,
            }
        finally:
            procs.stop(importer)
            procs.stop(gateway)

    def importer(self, registry: Path, env: dict[str, str]) -> Any:
        """The import worker on ``registry``, ready."""
        port = free_port_pair()
        proc = procs.start(
            ["-m", "consumers.importer"],
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "TOPICS_FILE": str(registry),
                "IMPORTER_PORT": str(port), "IMPORTER_GROUP": f"bench-{uuid.uuid4().hex[:8]}",
                "LOG_LEVEL": "warning", **env,
            },
            self.work / "importer.log",
        )  # fmt: skip
        procs.wait_http(f"http://127.0.0.1:{port}/ready")
        return proc

    def entity_import(self, file_type: str, rows: int, **importer_env: str) -> Result:
        """An entity file import of ``rows`` rows of 6 columns (string, integer, number, boolean, date,
        date-time): rows/s from the upload's start to COMPLETED (the upload included: a client
        waits for both), and the import worker's largest RSS."""
        topic, jobs_topic, entity_topic = self.topic("gw"), self.topic("jobs"), self.topic("entity")
        secret = uuid.uuid4().hex
        auth = self.work / "auth.yaml"
        key = hashlib.sha256(secret.encode()).hexdigest()
        auth.write_text(
            yaml.safe_dump(
                {"principals": [{"id": "bench", "key_sha256": key, "permissions": ["entity-import"]}]}
            )
        )
        shared = {
            "JOBS_TOPIC": jobs_topic, "UPLOAD_DIR": str(self.work / "uploads"),
            "STORE_URL": f"sqlite:///{self.work / 'jobs.db'}",
        }  # fmt: skip
        data = self.work / f"entity-{rows}.{file_type}"
        if not data.exists():
            (write_entity_csv if file_type == "csv" else write_entity_xlsx)(data, rows)
        gateway, base = self.gateway(topic, {"AUTH_FILE": str(auth), **shared}, entity_topic=entity_topic)
        importer = self.importer(self.registry(topic, entity_topic=entity_topic), {**shared, **importer_env})
        headers = {"Authorization": f"Bearer {secret}"}
        try:
            t0 = time.perf_counter()
            job_id = asyncio.run(_upload_entity_file(base, headers, data, file_type))
            rss = 0.0
            while True:
                rss = max(rss, procs.rss_mib(importer.pid))
                job = _json(urllib.request.Request(f"{base}/api/v1/job/{job_id}", headers=headers))["data"]
                if job["status"] in ("COMPLETED", "FAILED"):
                    break
                if time.perf_counter() - t0 > 900:
                    raise RuntimeError("the entity import did not finish in 15 minutes")
                time.sleep(0.1)
            t1 = time.perf_counter()
            if job["status"] != "COMPLETED" or job["output"]["importedCount"] != rows:
                raise RuntimeError(f"the entity import ended {job}")
            return {"events_per_s": rows / (t1 - t0), "rss_mib": rss}
        finally:
            procs.stop(importer)
            procs.stop(gateway)

    def sink(self, store_url_for: Callable[[], str]) -> Result:
        total = self.args.sink_records
        topic = self.topic("sink")
        self._produce_backlog(topic, total)
        proc, metrics = self.start_sink(topic, store_url_for())
        try:
            # Steady state, as the gateway's figures are (10 s after a 2 s warm-up): from 10% of the
            # backlog persisted to 90%, leaving out the group join, the first batches and the tail.
            low = self._persisted_at([metrics], 0.1 * total, timeout_s=300)
            high = self._persisted_at([metrics], 0.9 * total, timeout_s=300)
            rate = (high[1] - low[1]) / (high[0] - low[0])
            rss = procs.rss_mib(proc.pid) + sum(procs.rss_mib(c) for c in children_of(proc.pid))
            self._wait_persisted([metrics], total, timeout_s=300)
            return {"events_per_s": rate, "rss_mib": rss}
        finally:
            procs.stop(proc)

    def sink_scaleout(
        self, store_url_for: Callable[[], str], processes: int = 2, partitions: int = 6
    ) -> Result:
        """``processes`` sinks in one group on one store draining a ``partitions``-partition topic:
        the shape of scaling out by partitions on this machine (its two cores are shared by all)."""
        total = self.args.sink_records
        topic = self.topic("scaleout", partitions)
        self._produce_backlog(topic, total)
        store_url, group = store_url_for(), f"bench-{uuid.uuid4().hex[:8]}"
        sinks = [self.start_sink(topic, store_url, group) for _ in range(processes)]
        urls = [metrics for _proc, metrics in sinks]
        try:
            low = self._persisted_at(urls, 0.1 * total, timeout_s=300)
            high = self._persisted_at(urls, 0.9 * total, timeout_s=300)
            self._wait_persisted(urls, total, timeout_s=300)
            return {"events_per_s": (high[1] - low[1]) / (high[0] - low[0]), "processes": processes}
        finally:
            for proc, _metrics in sinks:
                procs.stop(proc)

    def _produce_backlog(self, topic: str, total: int) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        for i in range(total):
            value = backlog_value(i)
            while True:
                try:
                    producer.produce(topic, value, f"k{i % 97}".encode())
                    break
                except BufferError:
                    producer.poll(0.005)
        assert producer.flush(60) == 0

    def store_alone(self, store_url_for: Callable[[], str], copy: bool = False) -> Result:
        """The sink's rows, decoded beforehand, written by the store alone (``bench.store``): a
        bound on what any sink reaches on this machine. ``copy``: PostgreSQL's own COPY instead."""
        topic = self.topic("store")  # named in the rows only: nothing is produced to it
        out = subprocess.run(
            [
                sys.executable, "-m", "bench.store", store_url_for(), str(self.registry(topic)), topic,
                str(self.args.sink_records), *(["copy"] if copy else []),
            ],
            capture_output=True, text=True, cwd=procs.ROOT, timeout=900,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"bench.store exited {out.returncode}:\n{out.stderr[-4000:]}")
        result: Result = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    @staticmethod
    def _persisted_at(metrics: list[str], count: float, timeout_s: float) -> tuple[float, float]:
        """The first (time, persisted) sample at or past ``count`` events persisted by the sinks
        whose metrics URLs are given, summed.

        Sampled every 50 ms: each scrape costs the sink's loop about a millisecond.
        """
        deadline = time.monotonic() + timeout_s
        while (done := sum(_metric(m, "sink_records_persisted_total") for m in metrics)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sink did not persist {count:.0f} events within {timeout_s:.0f}s")
            time.sleep(0.05)
        return time.perf_counter(), done

    def start_sink(self, topic: str, store_url: str, group: str | None = None) -> tuple[Any, str]:
        """A sink process on ``topic``'s registry and ``group`` (a fresh one unless given); returns
        it and its metrics URL."""
        port = free_port_pair()
        proc = procs.start(
            ["-m", "consumers.sink"],
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "TOPICS_FILE": str(self.registry(topic)),
                "STORE_URL": store_url,
                "SINK_GROUP": group or f"bench-{uuid.uuid4().hex[:8]}",
                "SINK_PORT": str(port),
                "LOG_LEVEL": "warning",
            },
            self.work / "sink.log",
        )
        metrics = f"http://127.0.0.1:{port}/metrics"
        procs.wait_http(metrics)
        return proc, metrics

    def sink_keeps_up(self, store_url_for: Callable[[], str]) -> Result:
        """Gateway and sink side by side on this machine: 100-event batches at c=32 into the gateway
        while the sink persists. Over the same window: events accepted (200s) and events persisted
        per second, the backlog (on Kafka, not yet persisted) when the load stops, and how long the
        sink then takes to clear it.
        """
        topic = self.topic("keepup")
        gateway, base = self.gateway(topic)
        sink, metrics = self.start_sink(topic, store_url_for())
        try:
            url = base + "/v2/data/in/example"
            events = 100
            payload = body(events)
            # A msgid per request: every event a new row, as from real producers.
            wrk.run(url, payload, 32, 2, unique_msgid="bench-0001")  # warm-up; the sink joins meanwhile
            self._wait_persisted(metrics, self.records_in(topic), timeout_s=120)
            persisted0, t0 = _metric(metrics, "sink_records_persisted_total"), time.perf_counter()
            r = wrk.run(url, payload, 32, self.args.seconds, unique_msgid="bench-0001")
            persisted1, t1 = _metric(metrics, "sink_records_persisted_total"), time.perf_counter()
            on_kafka = self.records_in(topic)
            drained = self._wait_persisted(metrics, on_kafka, timeout_s=300)
            return {
                "accepted_events_per_s": (r.requests - r.non_2xx) * events / r.seconds,
                "events_per_s": (persisted1 - persisted0) / (t1 - t0),
                "backlog_at_end": on_kafka - persisted1,
                "drain_s": drained - t1,
                "errors": r.non_2xx + r.socket_errors,
            }
        finally:
            procs.stop(sink)
            procs.stop(gateway)

    def row_latency(self, store_url_for: Callable[[], str]) -> Result:
        """Single events one at a time at ``--latency-rate`` per second into the gateway while the
        sink runs: how long after the gateway took each event its row was written."""
        topic = self.topic("latency")
        gateway, base = self.gateway(topic)
        store_url = store_url_for()
        sink, metrics = self.start_sink(topic, store_url)
        try:
            url = base + "/v2/data/in/example"
            tag = uuid.uuid4().hex[:8]
            # Not measured: until the sink has joined its group and written a first row.
            warm = asyncio.run(post_paced(url, 10, 1, f"warm-{tag}"))
            self._wait_persisted(metrics, warm, timeout_s=120)
            rate = self.args.latency_rate
            accepted = asyncio.run(post_paced(url, rate, self.args.seconds, f"lat-{tag}"))
            self._wait_persisted(metrics, warm + accepted, timeout_s=120)
            delays = asyncio.run(row_delays_ms(store_url, f"lat-{tag}"))
            return {
                "offered_per_s": rate,
                "accepted": float(accepted),
                "rows": float(len(delays)),
                "p50_ms": quantile(delays, 0.5),
                "p99_ms": quantile(delays, 0.99),
                "max_ms": delays[-1],
            }
        finally:
            procs.stop(sink)
            procs.stop(gateway)

    @staticmethod
    def _wait_persisted(metrics: str | list[str], count: float, timeout_s: float) -> float:
        """Wait until the sink (or the sinks, summed) has persisted ``count`` events; returns the
        time it did."""
        urls = [metrics] if isinstance(metrics, str) else metrics
        deadline = time.monotonic() + timeout_s
        while sum(_metric(m, "sink_records_persisted_total") for m in urls) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sink did not persist {count:.0f} events within {timeout_s:.0f}s")
            time.sleep(0.02)
        return time.perf_counter()

    def overload(self) -> Result:
        topic = self.topic("overload")
        proc, base = self.gateway(topic, {"MAX_INFLIGHT_REQUESTS": "256"})
        try:
            url = base + "/v2/data/in/example"
            steady = wrk.run(url, body(1), 32, self.args.seconds)
            steady_rss = procs.rss_mib(proc.pid)
            # h2load, not wrk: its per-request log gives latency per status (shed and accepted apart).
            r = h2load.run(url, body(1), self.args.overload_connections, self.args.seconds)
            over_rss = procs.rss_mib(proc.pid)
            ok_total = (steady.requests - steady.non_2xx) + r.count(200)
            time.sleep(1)
            on_kafka = self.records_in(topic)
            ok, shed = r.by_status.get(200), r.by_status.get(503)
            # A status no request got has no latencies: left out, rather than recorded as 0 ms.
            latencies = {
                f"{kind}_{figure}_ms": getattr(lat, f"{figure}_ms")
                for kind, lat in (("ok", ok), ("shed", shed))
                if lat is not None
                for figure in ("p50", "p99", "max")
            }
            return {
                **latencies,
                "offered_connections": float(self.args.overload_connections),
                "answered_per_s": r.answered / r.seconds,
                "shed_share": r.count(503) / max(r.answered, 1),
                "p99_ms": r.overall.p99_ms,
                "max_ms": r.overall.max_ms,
                # Anything but 200 and 503 (none expected), and requests with no answer at all.
                "other_statuses": float(r.answered - r.count(200) - r.count(503)),
                "unanswered": float(r.unanswered),
                "steady_rss_mib": steady_rss,
                "overload_rss_mib": over_rss,
                "rss_ratio": over_rss / steady_rss,
                "acknowledged": float(ok_total),
                "on_kafka": float(on_kafka),
                "lost": float(max(ok_total - on_kafka, 0)),
            }
        finally:
            procs.stop(proc)


def _latencies(overload: Result, kind: str) -> str:
    if f"{kind}_p50_ms" not in overload:
        return "none answered so"
    return ", ".join(f"{f} {overload[f'{kind}_{f}_ms']:.1f} ms" for f in ("p50", "p99", "max"))


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def machine() -> dict[str, Any]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(
        next(
            ln.split()[1]
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        )
    )
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem / 1024 / 1024),
        "python": platform.python_version(),
        "kafka": "Apache Kafka 4.1.1 (local KRaft, same machine)",
    }


# The bounds on the sink, by scenario prefix: what each wrote, for the table.
_BOUNDS = {
    "store": "the store alone: the sink's rows decoded beforehand, no Kafka",
    "copy": "the server alone: the same rows by COPY, one per core",
}


def report(res: dict[str, Result], runs: int, rounds: list[dict[str, Result]] | None = None) -> str:
    """The Markdown tables. ``rounds``: each round's own figures, for each ratio round by round."""
    lines = [
        f"Medians of {runs} rounds (every scenario once per round); one process per program;"
        " load from wrk (1 thread) on loopback.",
        "",
    ]
    lines += [
        "| scenario | req/s | events/s | MB/s | p50 ms | p99 ms | max ms | errors | RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(v: float | None, digits: int = 0) -> str:
        return "" if v is None else f"{v:,.{digits}f}"

    for name, r in res.items():
        if (
            name.startswith(
                ("raw_", "plain_", "sink_", "scaleout_", "store_", "copy_", "keepup_", "latency_")
            )
            or name == "overload"
        ):
            continue
        lines.append(
            f"| {name} | {fmt(r.get('rps'))} | {fmt(r.get('events_per_s'))} | {fmt(r.get('mb_per_s'), 1)} | "
            f"{fmt(r.get('p50_ms'), 1)} | {fmt(r.get('p99_ms'), 1)} | {fmt(r.get('max_ms'), 1)} | "
            f"{fmt(r.get('errors'))} | {fmt(r.get('rss_mib'))} |"
        )
    for name, r in res.items():
        if name.startswith("raw_"):
            lines.append(
                f"| {name} (records) | | {fmt(r['records_per_s'])} | {fmt(r['mb_per_s'], 1)} | | | | | |"
            )
        if name.startswith("plain_"):
            lines.append(
                f"| {name} (records: values only, 1,000 keys, no headers; reference) | | "
                f"{fmt(r['records_per_s'])} | {fmt(r['mb_per_s'], 1)} | | | | | |"
            )
        if name.startswith("sink_"):
            lines.append(
                f"| {name} (persisted) | | {fmt(r['events_per_s'])} | | | | | | {fmt(r['rss_mib'])} |"
            )
        if name.startswith("scaleout_"):
            lines.append(
                f"| {name} ({r['processes']:.0f} sinks in one group, 6 partitions; persisted) | | "
                f"{fmt(r['events_per_s'])} | | | | | | |"
            )
        bound = _BOUNDS.get(name.split("_", 1)[0])
        if bound is not None:
            lines.append(f"| {name} ({bound}) | | {fmt(r['events_per_s'])} | | | | | | |")
    keepups = {k: r for k, r in res.items() if k.startswith("keepup_")}
    for name, r in keepups.items():
        lines.append(
            f"| {name} (gateway + sink side by side) | | accepted {fmt(r['accepted_events_per_s'])}, "
            f"persisted {fmt(r['events_per_s'])} | | | | | | |"
        )
    if keepups:
        lines.append("")
        lines += [
            f"{name}: backlog when the load stopped {r['backlog_at_end']:,.0f} events, "
            f"cleared {r['drain_s']:.1f} s later."
            for name, r in keepups.items()
        ]
    latencies = {k: r for k, r in res.items() if k.startswith("latency_")}
    if latencies:
        lines.append("")
        lines += [
            f"{name}: {r['accepted']:,.0f} single events at {r['offered_per_s']:.0f}/s, one at a time, "
            f"{r['rows']:,.0f} rows; each written p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
            f"max {r['max_ms']:.1f} ms after the gateway took it."
            for name, r in latencies.items()
        ]
    if "overload" in res:
        o = res["overload"]
        lines += [
            "",
            f"Overload ({o['offered_connections']:.0f} connections, MAX_INFLIGHT_REQUESTS=256, "
            f"h2load): {o['shed_share']:.0%} shed with 503 ({_latencies(o, 'shed')}), "
            f"the accepted answered 200 in {_latencies(o, 'ok')} (every answer: p99 {o['p99_ms']:.1f} ms); "
            f"answered {o['answered_per_s']:,.0f}/s, other statuses {o['other_statuses']:.0f}, "
            f"unanswered {o['unanswered']:.0f}, "
            f"RSS {o['steady_rss_mib']:.0f} -> {o['overload_rss_mib']:.0f} MiB (x{o['rss_ratio']:.2f}), "
            f"200s {o['acknowledged']:,.0f}, on Kafka {o['on_kafka']:,.0f}, lost {o['lost']:.0f}.",
        ]
    ratios = ratios_of(res)
    # Each round's ratio too: both sides measured minutes apart, where the medians may come from
    # different rounds; how far they spread shows how much the machine drifted.
    per_round = [ratios_of(r) for r in rounds or []]
    if ratios:
        lines += ["", "| ratio (same run) | value (of the medians) | round by round | target |"]
        lines.append("|---|---|---|---|")
        for k, (v, t) in ratios.items():
            each = ", ".join(f"{pr[k][0]:.2f}" for pr in per_round if k in pr)
            lines.append(f"| {k} | {v:.2f} | {each} | {t} |")
    return "\n".join(lines)


def ratios_of(res: dict[str, Result]) -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    if "gateway_single_c32" in res and "bare_aiohttp_c32" in res:
        out["gateway single req/s ÷ bare aiohttp req/s"] = (
            res["gateway_single_c32"]["rps"] / res["bare_aiohttp_c32"]["rps"],
            "≥ 0.70",
        )
    if "bare_publish_c32" in res and "bare_aiohttp_c32" in res:
        # A bound: the gateway does all the bare handler does and waits for Kafka as this one does.
        out["bare handler publishing to Kafka req/s ÷ bare aiohttp req/s (bound on the single ratio)"] = (
            res["bare_publish_c32"]["rps"] / res["bare_aiohttp_c32"]["rps"],
            "(reference)",
        )
        if "gateway_single_c32" in res:
            out["gateway single req/s ÷ bare handler publishing to Kafka req/s"] = (
                res["gateway_single_c32"]["rps"] / res["bare_publish_c32"]["rps"],
                "(reference)",
            )
    raws = [r["records_per_s"] for k, r in res.items() if k.startswith("raw_")]
    # The one-process confluent-kafka gateway: the default configuration.
    batches = [r["events_per_s"] for k, r in res.items() if k.startswith("gateway_batch")]
    if raws and batches:
        out["gateway batch events/s ÷ fastest raw producer"] = (max(batches) / max(raws), "≥ 0.40")
    if raws and "gateway_2workers_batch100_c32" in res:
        # For reference only: the target is one process's (the default configuration).
        out["two workers' batch events/s ÷ fastest raw producer"] = (
            res["gateway_2workers_batch100_c32"]["events_per_s"] / max(raws),
            "(reference)",
        )
    if "jsonl_import_1m" in res and batches:
        out["JSONL import lines/s (upload done to COMPLETE) ÷ gateway batch events/s"] = (
            res["jsonl_import_1m"]["events_per_s"] / max(batches),
            "≥ 0.50",
        )
        out["JSONL import worker's largest RSS (MiB)"] = (res["jsonl_import_1m"]["rss_mib"], "< 300")
    if "entity_csv_1m" in res and batches:
        out["entity import CSV rows/s (1M rows, upload to COMPLETED) ÷ gateway batch events/s"] = (
            res["entity_csv_1m"]["events_per_s"] / max(batches),
            "≥ 0.25",
        )
        out["entity import CSV worker's largest RSS (MiB)"] = (res["entity_csv_1m"]["rss_mib"], "< 300")
    for reader in ("calamine", "openpyxl"):
        if f"entity_xlsx_100k_{reader}" in res and batches:
            out[f"entity import XLSX rows/s (100k rows, {reader}) ÷ gateway batch events/s"] = (
                res[f"entity_xlsx_100k_{reader}"]["events_per_s"] / max(batches),
                "≥ 0.05" if reader == "calamine" else "(reference)",
            )
    if "client_1m" in res and batches:
        out["Python client events/s (1M small events, one process) ÷ gateway batch events/s"] = (
            res["client_1m"]["events_per_s"] / max(batches),
            "≥ 0.70",
        )
        out["Python client's peak RSS (MiB)"] = (res["client_1m"]["rss_mib"], "(reference)")
    if "source_import1000_c8" in res and batches:
        out["source import entries/s (1,000 a request, c=8) ÷ gateway batch events/s"] = (
            res["source_import1000_c8"]["events_per_s"] / max(batches),
            "≥ 0.50",
        )
    for kind in ("single", "batch100"):
        uv, aio = res.get(f"gateway_{kind}_c32"), res.get(f"gateway_asyncio_{kind}_c32")
        if uv and aio:  # EVENT_LOOP: the default (uvloop) against asyncio's own loop
            out[f"uvloop ÷ asyncio: gateway {kind} c32 events/s"] = (
                uv["events_per_s"] / aio["events_per_s"],
                "(reference)",
            )
    if "gateway_single_c32" in res:
        out["gateway single c32 p99 (ms)"] = (res["gateway_single_c32"]["p99_ms"], "≤ 25")
    if "overload" in res:
        out["overload RSS ÷ steady RSS"] = (res["overload"]["rss_ratio"], "≤ 1.5")
        out["overload: acknowledged but not on Kafka"] = (res["overload"]["lost"], "0")
        if "shed_p99_ms" in res["overload"]:
            out["overload: p99 of the shed requests' 503 (ms)"] = (
                res["overload"]["shed_p99_ms"],
                "(reference)",
            )
    # The sink's target is its own store's bound: PostgreSQL's own COPY cannot keep up with one
    # gateway process on a 2-core machine (bench/NOTES.md), so the gateway's rate is for reference.
    for store in ("sqlite", "postgres"):
        if f"sink_{store}" in res and f"store_{store}" in res:
            out[f"sink {store} events/s ÷ store_{store} rows/s (its store's bound)"] = (
                res[f"sink_{store}"]["events_per_s"] / res[f"store_{store}"]["events_per_s"],
                "≥ 0.75",
            )
        if f"sink_{store}" in res and batches:
            out[f"sink {store} events/s ÷ gateway batch events/s"] = (
                res[f"sink_{store}"]["events_per_s"] / max(batches),
                "(reference)",
            )
        if f"scaleout_{store}" in res and f"sink_{store}" in res:
            scale = res[f"scaleout_{store}"]
            out[f"{scale['processes']:.0f} sinks in one group ({store}) ÷ one sink, events/s"] = (
                scale["events_per_s"] / res[f"sink_{store}"]["events_per_s"],
                "(reference)",
            )
    # Bounds: no sink persists faster than its store writes rows it is handed ready-made.
    for name in ("store_sqlite", "store_postgres", "copy_postgres"):
        if name in res and batches:
            out[f"{name} rows/s ÷ gateway batch events/s (bound on the sink's ratio)"] = (
                res[name]["events_per_s"] / max(batches),
                "(reference)",
            )
    for store in ("sqlite", "postgres"):
        if f"keepup_{store}" in res:
            r = res[f"keepup_{store}"]
            out[f"side by side ({store}): persisted ÷ accepted events/s"] = (
                r["events_per_s"] / r["accepted_events_per_s"],
                "(reference)",
            )
    for store in ("sqlite", "postgres"):
        if f"latency_{store}" in res:
            out[f"row written after the gateway took the event ({store}), max ms"] = (
                res[f"latency_{store}"]["max_ms"],
                "≤ 1000",
            )
    return out


def _json(request: urllib.request.Request) -> Any:
    with urllib.request.urlopen(request, timeout=900) as r:
        return json.loads(r.read())


async def _upload_entity_file(base: str, headers: dict[str, str], path: Path, file_type: str) -> str:
    """``POST /api/v1/entities/customers/import`` of the file (streamed from disk); the job's id."""
    form = aiohttp.FormData()
    form.add_field("type", file_type)
    form.add_field("mapping", orjson.dumps({str(i): c for i, c in enumerate(ENTITY_COLUMNS, 1)}).decode())
    with path.open("rb") as f:
        form.add_field("file", f, filename=path.name, content_type="application/octet-stream")
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/api/v1/entities/customers/import", data=form, headers={**headers, "domain": "bench"}
            ) as r,
        ):
            doc = await r.json()
    if r.status != 200:
        raise RuntimeError(f"the entity upload was refused: {r.status} {doc}")
    return str(doc["data"]["id"])


def clean_up(work: Path, keep_logs: bool) -> None:
    """Remove the run's broker data and databases (~5 GB a run: a dozen runs once filled this
    machine's disk); after a failure keep its logs, and say where."""
    if not keep_logs:
        shutil.rmtree(work, ignore_errors=True)
        return
    shutil.rmtree(work / "kafka" / "logs", ignore_errors=True)
    for db in work.glob("*.db*"):
        db.unlink(missing_ok=True)
    print(f"bench: failed; its logs (gateway, sink, broker) are kept in {work}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--sink-records", type=int, default=1_000_000)
    parser.add_argument("--jsonl-lines", type=int, default=1_000_000)
    parser.add_argument("--entity-rows", type=int, default=1_000_000, help="CSV rows (XLSX: a tenth)")
    parser.add_argument("--overload-connections", type=int, default=1000)
    parser.add_argument("--latency-rate", type=float, default=200.0, help="single events/s, latency_*")
    parser.add_argument(
        "--only", default="", help="comma-separated scenario prefixes, e.g. raw,gateway_single"
    )
    args = parser.parse_args()

    def want(name: str) -> bool:
        return not args.only or any(name.startswith(p) for p in args.only.split(","))

    # Before anything starts, not after a quarter of an hour of scenarios.
    missing = [t for t in procs.TOOLS if (t != "h2load" or want("overload")) and shutil.which(t) is None]
    if missing:
        packages = " ".join(procs.TOOLS[t] for t in missing)
        print(f"bench: needs {' and '.join(missing)} (Debian: apt-get install {packages})", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    bench = Bench(args, work)
    bench.broker.start()
    pg: LocalPostgres | None = None
    res: dict[str, Result] = {}
    rounds: list[dict[str, Result]] = []
    finished = False

    def sqlite_url() -> str:
        return f"sqlite:///{work / uuid.uuid4().hex}.db"

    def pg_url() -> str:
        assert pg is not None
        server = pg
        name = f"bench_{uuid.uuid4().hex[:8]}"

        async def create() -> None:
            conn = await asyncpg.connect(server.admin_url)
            await conn.execute(f"CREATE DATABASE {name}")
            await conn.close()

        asyncio.run(create())
        return server.admin_url.rsplit("/", 1)[0] + "/" + name

    try:
        plan: list[tuple[str, Callable[[], Result]]] = [
            ("raw_confluent", lambda: bench.raw_producer("confluent")),
            ("raw_aiokafka", lambda: bench.raw_producer("aiokafka")),
            # For reference: the values alone, over 1,000 keys, without headers (bench/NOTES.md).
            ("plain_confluent", lambda: bench.raw_producer("confluent", plain=True)),
            ("bare_aiohttp_c32", bench.bare),
            ("bare_publish_c32", lambda: bench.bare(publish=True)),
            ("gateway_single_c32", lambda: bench.gateway_load(1, 32)),
            ("gateway_single_c128", lambda: bench.gateway_load(1, 128)),
            ("gateway_single_c1", lambda: bench.gateway_load(1, 1)),
            ("gateway_batch100_c32", lambda: bench.gateway_load(100, 32)),
            ("gateway_batch100_c128", lambda: bench.gateway_load(100, 128)),
            ("gateway_aiokafka_single_c32", lambda: bench.gateway_load(1, 32, GATEWAY_PUBLISHER="aiokafka")),
            (
                "gateway_aiokafka_batch100_c32",
                lambda: bench.gateway_load(100, 32, GATEWAY_PUBLISHER="aiokafka"),
            ),
            ("gateway_asyncio_single_c32", lambda: bench.gateway_load(1, 32, EVENT_LOOP="asyncio")),
            ("gateway_asyncio_batch100_c32", lambda: bench.gateway_load(100, 32, EVENT_LOOP="asyncio")),
            ("gateway_2workers_single_c128", lambda: bench.gateway_load(1, 128, GATEWAY_WORKERS="2")),
            ("gateway_2workers_batch100_c32", lambda: bench.gateway_load(100, 32, GATEWAY_WORKERS="2")),
            ("source_import1000_c8", lambda: bench.source_import(1000, 8)),
            ("client_1m", lambda: bench.client_load(1_000_000)),
            ("jsonl_import_1m", lambda: bench.jsonl_import(args.jsonl_lines)),
            ("entity_csv_1m", lambda: bench.entity_import("csv", args.entity_rows)),
            ("entity_xlsx_100k_calamine", lambda: bench.entity_import("xlsx", args.entity_rows // 10)),
            (
                "entity_xlsx_100k_openpyxl",
                lambda: bench.entity_import("xlsx", args.entity_rows // 10, XLSX_IN_MEMORY_MAX_BYTES="0"),
            ),
            ("sink_sqlite", lambda: bench.sink(sqlite_url)),
            ("sink_postgres", lambda: bench.sink(pg_url)),
            ("store_sqlite", lambda: bench.store_alone(sqlite_url)),
            ("store_postgres", lambda: bench.store_alone(pg_url)),
            ("copy_postgres", lambda: bench.store_alone(pg_url, copy=True)),
            ("scaleout_sqlite", lambda: bench.sink_scaleout(sqlite_url)),
            ("scaleout_postgres", lambda: bench.sink_scaleout(pg_url)),
            ("keepup_sqlite", lambda: bench.sink_keeps_up(sqlite_url)),
            ("keepup_postgres", lambda: bench.sink_keeps_up(pg_url)),
            ("latency_sqlite", lambda: bench.row_latency(sqlite_url)),
            ("latency_postgres", lambda: bench.row_latency(pg_url)),
        ]
        # Round by round: every scenario once per round, each figure the median over the rounds.
        # This machine's speed drifts over minutes, and scenarios measured back to back would
        # put all three samples of one side of a ratio in the same slow (or fast) stretch.
        samples: dict[str, list[Result]] = {}
        no_postgres = False
        if want("raw_confluent"):
            # The broker was just started: its JVM is still compiling. In every earlier run the first
            # round's raw figure was the lowest by far (347k against 571k and 619k records/s in the
            # last one); this unmeasured pass warms it up for everything after it.
            print("bench: warming the broker up (not measured) ...", file=sys.stderr, flush=True)
            bench.raw_producer("confluent")
        for round_no in range(1, args.runs + 1):
            for name, fn in plan:
                if not want(name) or (no_postgres and name.endswith("_postgres")):
                    continue
                if name.endswith("_postgres") and pg is None:
                    bindir = find_bindir()
                    if bindir is None:
                        print("bench: PostgreSQL scenarios skipped: no PostgreSQL binaries", file=sys.stderr)
                        no_postgres = True
                        continue
                    pg = LocalPostgres(bindir, durable=True)  # fsync on, as in production
                    pg.init()
                    pg.start()
                print(f"bench: {name} (round {round_no}/{args.runs}) ...", file=sys.stderr, flush=True)
                samples.setdefault(name, []).append(fn())
                print(f"bench: {name}: {json.dumps(samples[name][-1])}", file=sys.stderr, flush=True)
        res.update({name: median_of(runs) for name, runs in samples.items()})
        rounds = [
            {name: runs[i] for name, runs in samples.items() if i < len(runs)} for i in range(args.runs)
        ]
        if want("overload"):
            print("bench: overload ...", file=sys.stderr, flush=True)
            res["overload"] = bench.overload()
        finished = True
    finally:
        if pg is not None:
            pg.destroy()
        bench.broker.stop()
        clean_up(work, keep_logs=not finished)
    text = report(res, args.runs, rounds)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": machine(),
        "runs": args.runs,
        "seconds": args.seconds,
        "results": res,
        "ratios": {k: v for k, (v, _t) in ratios_of(res).items()},
        "rounds": rounds,
        "table": text,
    }
    # A run of some scenarios (--only) does not replace the last full run's results.
    (RESULTS / ("partial.json" if args.only else "latest.json")).write_text(json.dumps(out, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
