"""Settings from the environment: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from consumers.sink.settings import SinkSettings
from gateway.settings import GatewaySettings
from ingest_core.env import SettingsError


def test_defaults_when_unset() -> None:
    assert GatewaySettings.from_env({}) == GatewaySettings()


def test_linger_may_be_fractional() -> None:
    assert GatewaySettings.from_env({"KAFKA_LINGER_MS": "0.5"}).kafka_linger_ms == 0.5
    assert GatewaySettings.from_env({"KAFKA_LINGER_MS": "5"}).kafka_linger_ms == 5.0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KAFKA_LINGER_MS", "soon", "KAFKA_LINGER_MS='soon': expected a number"),
        ("KAFKA_LINGER_MS", "-1", "KAFKA_LINGER_MS=-1.0: must be at least 0.0"),
        ("KAFKA_LINGER_MS", "nan", "KAFKA_LINGER_MS=nan: must be at least 0.0"),
        ("GATEWAY_PORT", "http", "GATEWAY_PORT='http': expected an integer"),
        ("GATEWAY_PUBLISHER", "kafka-python", "GATEWAY_PUBLISHER='kafka-python': expected one of"),
        ("GATEWAY_LISTEN_BACKLOG", "0", "GATEWAY_LISTEN_BACKLOG=0: must be at least 1"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        GatewaySettings.from_env({name: value})
    assert str(info.value).startswith(message)


def test_sink_defaults_and_batches_in_flight() -> None:
    assert SinkSettings.from_env({}) == SinkSettings()
    assert SinkSettings.from_env({"SINK_BATCHES_IN_FLIGHT": "8"}).batches_in_flight == 8
    with pytest.raises(SettingsError) as info:
        SinkSettings.from_env({"SINK_BATCHES_IN_FLIGHT": "0"})
    assert str(info.value).startswith("SINK_BATCHES_IN_FLIGHT=0: must be at least 1")
