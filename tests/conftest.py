"""Session fixtures: one real Kafka broker for the whole run.

``KAFKA_BOOTSTRAP_SERVERS`` set: use it. Else a Docker engine answers: testcontainers' Kafka.
Else: a local broker from scripts/kafka.sh on free ports, stopped at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.kafka import LocalBroker, docker_available, free_port_pair


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
