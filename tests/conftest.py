"""Session fixtures: one real Kafka broker and one real PostgreSQL server for the whole run.

``KAFKA_BOOTSTRAP_SERVERS`` set: use it. Else a Docker engine answers: testcontainers' Kafka.
Else: a local broker from scripts/kafka.sh on free ports, stopped at the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.kafka import LocalBroker, docker_available, free_port_pair
from tests.support.postgres import LocalPostgres, find_bindir
from tests.support.s3 import LocalS3, NoS3, S3Server


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        return
    if docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), free_port_pair())
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres | str]:
    """A PostgreSQL server: ``PG_TEST_URL`` when set, else a private cluster from the local binaries."""
    configured = os.environ.get("PG_TEST_URL", "").strip()
    if configured:
        yield configured
        return
    bindir = find_bindir()
    if bindir is None:
        reason = "no PostgreSQL binaries (initdb) found and PG_TEST_URL unset"
        # CI installs PostgreSQL: there a missing one is a broken set-up, never a pass.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}")
        pytest.skip(f"PostgreSQL tests SKIPPED: {reason}")
    server = LocalPostgres(bindir)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


async def _new_database(admin_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres | str) -> str:
    """A fresh database of its own for each test."""
    admin = postgres_server if isinstance(postgres_server, str) else postgres_server.admin_url
    # Its own event loop in a worker thread: fixtures may be set up while the test loop runs.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _new_database(admin)).result(timeout=60)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ingest.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3-compatible server: ``S3_TEST_ENDPOINT`` when set, else versitygw started here."""
    endpoint = os.environ.get("S3_TEST_ENDPOINT", "").strip()
    if endpoint:
        yield S3Server(endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
        return
    server = LocalS3(tmp_path_factory.mktemp("s3"))
    try:
        server.start()
    except NoS3 as exc:
        # CI has Go: there a missing server is a broken set-up, never a pass.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"S3 tests cannot run under CI: {exc}")
        pytest.skip(f"S3 tests SKIPPED: {exc}")
    try:
        yield server.server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket, with the AWS_* variables of its server set for the test (and its children):
    its BLOB_STORE_URL."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    # Its own event loop in a worker thread: fixtures may be set up while the test loop runs.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _create_bucket(bucket)).result(timeout=60)
    return f"s3://{bucket}/uploads"


async def _create_bucket(bucket: str) -> None:
    from aiobotocore.session import get_session

    async with get_session().create_client("s3") as client:
        await client.create_bucket(Bucket=bucket)
