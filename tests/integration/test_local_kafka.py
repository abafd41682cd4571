"""scripts/kafka.sh's readiness probe speaks the Kafka protocol to a real broker."""

from __future__ import annotations

import importlib.util

import pytest

from tests.support.kafka import ROOT, free_port_pair

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("kafka_ready", ROOT / "scripts" / "kafka_ready.py")
assert _spec is not None
assert _spec.loader is not None
kafka_ready = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kafka_ready)


def test_probe_sees_the_broker(kafka_bootstrap: str) -> None:
    host, port = kafka_bootstrap.split(",")[0].rsplit(":", 1)
    assert kafka_ready.brokers(host, int(port)) >= 1


def test_probe_fails_on_a_closed_port() -> None:
    with pytest.raises(ConnectionRefusedError):
        kafka_ready.brokers("127.0.0.1", free_port_pair(), timeout_s=1)
