"""The gateway as its users run it: a process, with its exit codes, workers and signals."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from ingest_core.registry import load_registry
from tests.support.gateway import EXAMPLE_SCHEMA, envelope, write_registry
from tests.support.kafka import ROOT, free_port_pair, read_topic, unique
from tests.support.proc import children_of, running, spawned_children
from tests.support.sink import metric_value

pytestmark = pytest.mark.integration


def is_gone(pid: int) -> bool:
    return not running(pid)


def kill_all(proc: subprocess.Popen[bytes]) -> None:
    """Kill the gateway and anything it started (its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def start_gateway(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway"], env={**os.environ, **env}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


async def wait_ready(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("gateway did not become ready")


def registry_env(kafka_bootstrap: str, tmp_path: Path, port: int) -> dict[str, str]:
    topic = unique("ingest.proc")
    registry = write_registry(
        tmp_path / "topics.yaml", [{"id": "example", "entry_topic": topic, "schema": str(EXAMPLE_SCHEMA)}]
    )
    subprocess.run(
        [sys.executable, "-m", "ingest_core.topics_cli", "apply"], check=True, cwd=ROOT, capture_output=True,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPICS_FILE": str(registry)},
    )  # fmt: skip
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPICS_FILE": str(registry),
        "GATEWAY_PORT": str(port),
    }


async def two_worker_gateway(
    kafka_bootstrap: str, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], int, list[int]]:
    """A gateway with GATEWAY_WORKERS=2, ready: its process, port and the two worker pids."""
    port = free_port_pair()
    proc = start_gateway({**registry_env(kafka_bootstrap, tmp_path, port), "GATEWAY_WORKERS": "2"})
    try:
        await wait_ready(port)
        workers = spawned_children(proc.pid)
    except BaseException:
        kill_all(proc)
        raise
    assert len(workers) == 2
    return proc, port, workers


async def test_workers_share_the_port_and_stop_together(kafka_bootstrap: str, tmp_path: Path) -> None:
    proc, port, _workers = await two_worker_gateway(kafka_bootstrap, tmp_path)
    try:
        assert len(children_of(proc.pid)) >= 2
        # Each worker's listening socket queues GATEWAY_LISTEN_BACKLOG connections (for a listener,
        # ss shows the backlog as Send-Q), not aiohttp's 128.
        ss = await asyncio.to_thread(
            subprocess.run, ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
        )
        listeners = ss.stdout.splitlines()
        assert listeners, "nothing listens on the gateway's port"
        assert all(line.split()[2] == "1024" for line in listeners), listeners
        async with aiohttp.ClientSession() as session:
            for i in range(20):
                body = envelope({"eid": f"w{i}"}, msgid=f"w-{i}")
                async with session.post(f"http://127.0.0.1:{port}/v2/data/in/example", json=body) as r:
                    assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        kill_all(proc)


async def inflight_requests(session: aiohttp.ClientSession, port: int) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
        return metric_value(await r.text(), "gateway_inflight_requests ")


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
async def test_sigterm_stops_accepting_answers_the_request_in_flight_and_exits_0(
    kafka_bootstrap: str, tmp_path: Path, event_loop: str
) -> None:
    # One process (no supervisor): the request waits in the producer's 3 s linger when SIGTERM comes.
    port = free_port_pair()
    env = {
        **registry_env(kafka_bootstrap, tmp_path, port),
        "KAFKA_LINGER_MS": "3000",
        "EVENT_LOOP": event_loop,
    }
    dataset = load_registry(Path(env["TOPICS_FILE"])).get("example")
    assert dataset is not None
    assert dataset.entry_topic is not None
    proc = start_gateway(env)
    try:
        await wait_ready(port)
        async with aiohttp.ClientSession() as session:

            async def post() -> int:
                body = envelope({"eid": "last"}, msgid="sigterm-1")
                async with session.post(f"http://127.0.0.1:{port}/v2/data/in/example", json=body) as r:
                    return r.status

            posting = asyncio.create_task(post())
            for _ in range(100):
                if await inflight_requests(session, port) == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the request never reached the gateway")
            proc.send_signal(signal.SIGTERM)
            # New connections are refused at once, while the request in flight still waits.
            for _ in range(100):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        pass
                except ConnectionRefusedError:
                    break
                except ConnectionResetError:
                    # The listening socket closed during this handshake: try again, the next is refused.
                    pass
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("still accepting connections after SIGTERM")
            assert not posting.done()
            assert await posting == 200
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0
    finally:
        kill_all(proc)
    assert f"listening on http://127.0.0.1:{port} ({event_loop})".encode() in out, out
    records = await asyncio.to_thread(read_topic, kafka_bootstrap, dataset.entry_topic, 1)
    assert [r.key() for r in records] == [b"sigterm-1"]


async def test_connections_beyond_the_limit_wait_until_one_closes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port_pair()
    proc = start_gateway({**registry_env(kafka_bootstrap, tmp_path, port), "GATEWAY_MAX_CONNECTIONS": "2"})
    held: list[socket.socket] = []
    try:
        await wait_ready(port)
        await asyncio.sleep(0.5)  # the readiness probe's connection is closed by now
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            # Two connections are open: a third is not served, it waits to be accepted.
            with pytest.raises(TimeoutError):
                async with session.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=1)):
                    pass
            held.pop(0).close()
            body = envelope({"eid": "limit"}, msgid="limit-1")
            async with session.post(f"{url}/v2/data/in/example", json=body) as r:
                assert r.status == 200
            held.pop(0).close()
            async with session.get(f"{url}/metrics") as r:
                metrics = await r.text()
        assert metric_value(metrics, "gateway_connection_limit_reached_total ") >= 1
        assert metric_value(metrics, "gateway_connections_open ") >= 1  # the scrape's own
        assert metric_value(metrics, "gateway_connections_accepted_total ") >= 4
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0
    finally:
        for sock in held:
            sock.close()
        kill_all(proc)
    assert b"2 connections open, the most allowed (GATEWAY_MAX_CONNECTIONS)" in out, out


async def test_an_idle_connection_is_closed_after_the_keepalive_timeout(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port_pair()
    proc = start_gateway(
        {**registry_env(kafka_bootstrap, tmp_path, port), "GATEWAY_KEEPALIVE_TIMEOUT_S": "1"}
    )
    try:
        await wait_ready(port)
        loop = asyncio.get_running_loop()
        idle, used, partial = (socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3))
        with idle, used, partial:
            used.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert used.recv(4096).startswith(b"HTTP/1.1 200")
            partial.sendall(b"GET /health HTTP/1.1\r\nHost:")  # headers never finished
            started = time.monotonic()
            # Closed by the gateway (EOF): one that never sent a request, one that did, and one
            # that sent only part of its headers (a slow client holds no connection for long).
            for sock in (idle, used, partial):
                assert await loop.run_in_executor(None, sock.recv, 1) == b""
            assert time.monotonic() - started < 4.5
    finally:
        kill_all(proc)


async def test_a_dead_worker_stops_the_rest_with_status_1(kafka_bootstrap: str, tmp_path: Path) -> None:
    proc, _port, workers = await two_worker_gateway(kafka_bootstrap, tmp_path)
    try:
        os.kill(workers[0], signal.SIGKILL)
        assert await asyncio.to_thread(proc.wait, 30) == 1
        await asyncio.sleep(0.5)
        assert is_gone(workers[1])
    finally:
        kill_all(proc)


def test_unreachable_kafka_fails_the_start(tmp_path: Path) -> None:
    port = free_port_pair()
    registry = write_registry(tmp_path / "topics.yaml", [{"id": "example", "entry_topic": "t"}])
    proc = start_gateway({"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port_pair()}", "TOPICS_FILE": str(registry),
                          "GATEWAY_PORT": str(port), "METADATA_TIMEOUT_MS": "1000"})  # fmt: skip
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert b"Kafka did not answer a metadata request at start" in out


async def test_a_port_in_use_fails_the_start(kafka_bootstrap: str, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = start_gateway(registry_env(kafka_bootstrap, tmp_path, port))
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 1
    assert f"ingest-gateway: cannot listen on 127.0.0.1:{port}: Address already in use".encode() in out


async def test_a_metrics_port_in_use_fails_the_start_with_its_reason(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        metrics_port = taken.getsockname()[1]
        env = {**registry_env(kafka_bootstrap, tmp_path, free_port_pair()), "METRICS_PORT": str(metrics_port)}
        proc = start_gateway(env)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 1
    assert f"ingest-gateway: METRICS_PORT: cannot listen on 127.0.0.1:{metrics_port}".encode() in out
    assert b"Traceback" not in out


def test_bad_registry_fails_with_the_key_named(tmp_path: Path) -> None:
    registry = tmp_path / "topics.yaml"
    registry.write_text("datasets:\n  - id: a\n    partitions: many\n")
    proc = start_gateway({"TOPICS_FILE": str(registry)})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"datasets[0].partitions: 'many' is not of type 'integer'" in out


def test_bad_setting_fails_with_the_variable_named() -> None:
    proc = start_gateway({"MAX_BODY_BYTES": "lots"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"MAX_BODY_BYTES='lots': expected an integer" in out


def wait_gone(pids: list[int], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(is_gone(p) for p in pids):
        assert time.monotonic() < deadline, "orphaned workers kept running"
        time.sleep(0.1)


async def test_workers_stop_when_the_supervisor_is_killed(kafka_bootstrap: str, tmp_path: Path) -> None:
    proc, _port, workers = await two_worker_gateway(kafka_bootstrap, tmp_path)
    try:
        proc.kill()  # the supervisor only
        await asyncio.to_thread(wait_gone, workers)
    finally:
        kill_all(proc)


def test_workers_stop_when_the_supervisor_is_killed_while_they_start(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Killed before its workers have finished importing: a worker that only then looked up its
    # parent would find init (or a subreaper) and never notice it was orphaned.
    proc = start_gateway(
        {**registry_env(kafka_bootstrap, tmp_path, free_port_pair()), "GATEWAY_WORKERS": "2"}
    )
    try:
        deadline = time.monotonic() + 30
        while len(workers := spawned_children(proc.pid)) < 2:
            assert time.monotonic() < deadline, "the supervisor did not start its workers"
            time.sleep(0.01)
        proc.kill()
        wait_gone(workers)
    finally:
        kill_all(proc)


async def test_the_served_gateway_decodes_bodies_itself(kafka_bootstrap: str, tmp_path: Path) -> None:
    # The route decodes Content-Encoding only if the server it runs in does not: the program's own
    # server must be set up that way (AUTO_DECOMPRESS), not only the tests' one.
    port = free_port_pair()
    proc = start_gateway(registry_env(kafka_bootstrap, tmp_path, port))
    try:
        await wait_ready(port)
        url = f"http://127.0.0.1:{port}/v2/data/in/example"
        body = orjson.dumps(envelope({"eid": "gz"}, msgid="served-gz"))
        async with aiohttp.ClientSession() as session:
            for coding, data, status in (("gzip", gzip.compress(body), 200), ("br", body, 415)):
                headers = {"Content-Type": "application/json", "Content-Encoding": coding}
                async with session.post(url, data=data, headers=headers) as r:
                    assert r.status == status, await r.text()
                    assert r.content_type == "application/json"
    finally:
        kill_all(proc)


async def test_request_ids_and_trace_context_reach_kafka_and_the_json_log(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port_pair()
    env = registry_env(kafka_bootstrap, tmp_path, port)
    topic = load_registry(Path(env["TOPICS_FILE"])).datasets["example"].entry_topic
    assert topic is not None
    proc = start_gateway({**env, "LOG_FORMAT": "json", "ACCESS_LOG": "true"})
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    try:
        await wait_ready(port)
        url = f"http://127.0.0.1:{port}/v2/data/in/example"
        async with aiohttp.ClientSession() as session:
            headers = {"X-Request-ID": "req-7f3a", "traceparent": parent}
            async with session.post(
                url,
                json=envelope([{"eid": "payload-canary-91f"}, {"eid": "t2"}], msgid="traced"),
                headers=headers,
            ) as r:
                assert (r.status, r.headers["X-Request-ID"]) == (200, "req-7f3a")
            # No id, or one that is not sane (a space, too long): one is made.
            for given in (None, "has space", "x" * 129):
                extra = {} if given is None else {"X-Request-ID": given}
                async with session.post(
                    url, json=envelope({"eid": "t3"}, msgid="untraced"), headers=extra
                ) as r:
                    assert r.status == 200
                    made = r.headers["X-Request-ID"]
                    assert len(made) == 32
                    assert int(made, 16) >= 0
            async with session.get(
                f"http://127.0.0.1:{port}/nowhere", headers={"X-Request-ID": "req-404"}
            ) as r:
                assert (r.status, r.headers["X-Request-ID"]) == (404, "req-404")
        records = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 5)
        traced = [
            dict(m.headers() or []) for m in records if (dict(m.headers() or []).get("msgid") == b"traced")
        ]
        assert len(traced) == 2
        for headers_of in traced:
            assert (headers_of["request_id"], headers_of["traceparent"]) == (b"req-7f3a", parent.encode())
        untraced = [
            dict(m.headers() or []) for m in records if dict(m.headers() or []).get("msgid") == b"untraced"
        ]
        assert len(untraced) == 3
        assert all("traceparent" not in h and len(h["request_id"] or b"") == 32 for h in untraced)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    lines = [orjson.loads(line) for line in out.splitlines() if line.startswith(b"{")]
    assert lines, out
    for line in lines:
        assert {"time", "level", "logger", "message", "pid"} <= set(line), line
    access = [line for line in lines if line.get("request_id") == "req-7f3a"]
    assert len(access) == 1, lines
    assert (access[0]["route"], access[0]["status"], access[0]["method"]) == (
        "/v2/data/in/{dataset_id}",
        200,
        "POST",
    )
    assert access[0]["duration_ms"] > 0
    assert b"payload-canary-91f" not in out  # never an event's payload


async def _statuses_until(stop: asyncio.Event, port: int, out: list[int]) -> None:
    url = f"http://127.0.0.1:{port}/v2/data/in/example"
    async with aiohttp.ClientSession() as session:
        i = 0
        while not stop.is_set():
            i += 1
            async with session.post(url, json=envelope({"eid": "load"}, msgid=f"load-{i}")) as r:
                out.append(r.status)


async def _status_of(port: int, dataset: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"http://127.0.0.1:{port}/v2/data/in/{dataset}", json=envelope({"eid": "x"})
        ) as r:
            return r.status


async def _until_status(port: int, dataset: str, status: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := await _status_of(port, dataset)) != status:
        assert time.monotonic() < deadline, f"{dataset}: still {got}"
        await asyncio.sleep(0.1)


def _with_orders(env: dict[str, str], kafka_bootstrap: str) -> None:
    """The registry once more, with a dataset ``orders`` (its topic made by the reload)."""
    path = Path(env["TOPICS_FILE"])
    doc = load_registry(path)
    example = doc.datasets["example"]
    write_registry(path, [
        {"id": "example", "entry_topic": example.entry_topic, "schema": str(EXAMPLE_SCHEMA)},
        {"id": "orders", "entry_topic": unique("ingest.orders")},
    ])  # fmt: skip


async def test_sighup_reloads_the_registry_under_load_and_refuses_a_bad_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port_pair()
    env = registry_env(kafka_bootstrap, tmp_path, port)
    proc = start_gateway(env)
    stop, statuses = asyncio.Event(), list[int]()
    try:
        await wait_ready(port)
        assert await _status_of(port, "orders") == 404
        load = asyncio.create_task(_statuses_until(stop, port, statuses))
        await asyncio.sleep(0.5)
        _with_orders(env, kafka_bootstrap)
        proc.send_signal(signal.SIGHUP)
        await _until_status(port, "orders", 200)
        await asyncio.to_thread(Path(env["TOPICS_FILE"]).write_text, "datasets: [ {id: ", "utf-8")
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(1.5)
        assert await _status_of(port, "orders") == 200  # the old configuration stays in force
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
        assert metric_value(text, "gateway_config_generation") == 2
        assert metric_value(text, "gateway_config_reload_failures_total") == 1
        stop.set()
        await load
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert len(statuses) > 50
    assert set(statuses) == {200}, statuses  # not one request failed while the configuration changed
    assert b"configuration reloaded (generation 2)" in out
    assert b"configuration reload refused, the old configuration stays in force" in out


async def test_watch_config_reloads_a_changed_registry(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = free_port_pair()
    env = registry_env(kafka_bootstrap, tmp_path, port)
    proc = start_gateway({**env, "WATCH_CONFIG": "true"})
    try:
        await wait_ready(port)
        assert await _status_of(port, "orders") == 404
        _with_orders(env, kafka_bootstrap)
        await _until_status(port, "orders", 200)
    finally:
        kill_all(proc)


def _sasl_bootstrap(kafka_bootstrap: str) -> str:
    """The local broker's SASL/PLAIN listener (scripts/kafka.sh: port + 2000)."""
    host, port = kafka_bootstrap.split(",")[0].rsplit(":", 1)
    sasl = f"{host}:{int(port) + 2000}"
    with socket.socket() as s:
        if s.connect_ex((host, int(port) + 2000)) != 0:
            reason = f"no SASL listener at {sasl} (the broker is not one scripts/kafka.sh started)"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(reason)
            pytest.skip(reason)
    return sasl


SASL = {
    "LIBRDKAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LIBRDKAFKA_SASL_MECHANISMS": "PLAIN",
    "LIBRDKAFKA_SASL_USERNAME": "ingest", "LIBRDKAFKA_SASL_PASSWORD": "ingest-local-secret",
}  # fmt: skip


async def test_librdkafka_settings_pass_through_to_a_sasl_listener(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    sasl = _sasl_bootstrap(kafka_bootstrap)
    port = free_port_pair()
    env = registry_env(kafka_bootstrap, tmp_path, port)  # topics made on the plain listener
    topic = load_registry(Path(env["TOPICS_FILE"])).datasets["example"].entry_topic
    assert topic is not None
    proc = start_gateway({**env, **SASL, "KAFKA_BOOTSTRAP_SERVERS": sasl})
    try:
        await wait_ready(port)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/v2/data/in/example"
            async with session.post(url, json=envelope({"eid": "sasl"}, msgid="over-sasl")) as r:
                assert r.status == 200, await r.text()
    finally:
        kill_all(proc)
    records = await asyncio.to_thread(read_topic, kafka_bootstrap, topic, 1)
    assert [dict(m.headers() or [])["msgid"] for m in records] == [b"over-sasl"]
    # A wrong password: Kafka refuses the gateway's clients, and it does not start.
    wrong = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gateway"], cwd=ROOT, capture_output=True, timeout=60,
        env={**os.environ, **env, **SASL, "KAFKA_BOOTSTRAP_SERVERS": sasl, "LIBRDKAFKA_SASL_PASSWORD": "nope",
             "METADATA_TIMEOUT_MS": "3000"},
    )  # fmt: skip
    assert wrong.returncode == 1, wrong.stderr[-2000:]
    # A property the programs set themselves is refused at start.
    refused = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gateway"], cwd=ROOT, capture_output=True, timeout=60,
        env={**os.environ, **env, "LIBRDKAFKA_ACKS": "1"},
    )  # fmt: skip
    assert refused.returncode == 2
    assert b"LIBRDKAFKA_ACKS" in refused.stderr
