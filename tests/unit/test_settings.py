"""Settings from the environment: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import importlib.util

import pytest

from consumers.sink.settings import SinkSettings
from gateway.settings import GatewaySettings
from ingest_core.env import SettingsError


def test_defaults_when_unset() -> None:
    assert GatewaySettings.from_env({}) == GatewaySettings()


def test_linger_may_be_fractional() -> None:
    assert GatewaySettings.from_env({"KAFKA_LINGER_MS": "0.5"}).kafka_linger_ms == 0.5
    assert GatewaySettings.from_env({"KAFKA_LINGER_MS": "5"}).kafka_linger_ms == 5.0


def test_batch_requests_linger_longer_by_default() -> None:
    assert (GatewaySettings().kafka_linger_ms, GatewaySettings().kafka_batch_linger_ms) == (0.2, 5.0)
    assert GatewaySettings.from_env({"KAFKA_BATCH_LINGER_MS": "0.2"}).kafka_batch_linger_ms == 0.2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KAFKA_LINGER_MS", "soon", "KAFKA_LINGER_MS='soon': expected a number"),
        ("KAFKA_LINGER_MS", "-1", "KAFKA_LINGER_MS=-1.0: must be at least 0.0"),
        ("KAFKA_LINGER_MS", "nan", "KAFKA_LINGER_MS=nan: must be at least 0.0"),
        ("KAFKA_LINGER_MS", "inf", "KAFKA_LINGER_MS=inf: must be at most 900000.0"),
        ("KAFKA_BATCH_LINGER_MS", "1e6", "KAFKA_BATCH_LINGER_MS=1000000.0: must be at most 900000.0"),
        ("KAFKA_BATCH_LINGER_MS", "later", "KAFKA_BATCH_LINGER_MS='later': expected a number"),
        ("GATEWAY_PORT", "http", "GATEWAY_PORT='http': expected an integer"),
        ("GATEWAY_PUBLISHER", "kafka-python", "GATEWAY_PUBLISHER='kafka-python': expected one of"),
        ("GATEWAY_LISTEN_BACKLOG", "0", "GATEWAY_LISTEN_BACKLOG=0: must be at least 1"),
        ("GATEWAY_MAX_CONNECTIONS", "0", "GATEWAY_MAX_CONNECTIONS=0: must be at least 1"),
        ("GATEWAY_KEEPALIVE_TIMEOUT_S", "0.5", "GATEWAY_KEEPALIVE_TIMEOUT_S=0.5: must be at least 1.0"),
        ("KAFKA_REPORT_WAKEUP", "fd", "KAFKA_REPORT_WAKEUP='fd': expected one of pipe, timer"),
        ("EVENT_LOOP", "trio", "EVENT_LOOP='trio': expected one of auto, uvloop, asyncio"),
        ("MAX_INFLIGHT_BYTES", "1k", "MAX_INFLIGHT_BYTES='1k': expected an integer"),
        ("MAX_INFLIGHT_BYTES", "100", "MAX_INFLIGHT_BYTES=100: must be at least 1024"),
        ("KAFKA_MAX_RECORD_BYTES", "1000", "KAFKA_MAX_RECORD_BYTES=1000: must be at least 4096"),
        (
            "KAFKA_MAX_RECORD_BYTES",
            "1000000001",
            "KAFKA_MAX_RECORD_BYTES=1000000001: librdkafka takes at most 1000000000",
        ),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        GatewaySettings.from_env({name: value})
    assert str(info.value).startswith(message)


def test_in_flight_bounds_default_and_must_fit_the_largest_request() -> None:
    d = GatewaySettings()
    assert (d.max_inflight_bytes, d.max_inflight_events) == (64 * 1024 * 1024, 500_000)
    fits = GatewaySettings.from_env({"MAX_INFLIGHT_BYTES": "2048", "MAX_BODY_BYTES": "2048"})
    assert (fits.max_inflight_bytes, fits.max_body_bytes) == (2048, 2048)
    with pytest.raises(SettingsError) as info:
        GatewaySettings.from_env({"MAX_INFLIGHT_BYTES": "5000000"})  # the default body is 10 MiB
    assert str(info.value).startswith("MAX_BODY_BYTES=10485760 exceeds MAX_INFLIGHT_BYTES=5000000")
    with pytest.raises(SettingsError) as info:
        GatewaySettings.from_env({"MAX_INFLIGHT_EVENTS": "5000"})  # the default batch is 10,000
    assert str(info.value).startswith("MAX_BATCH_EVENTS=10000 exceeds MAX_INFLIGHT_EVENTS=5000")
    assert GatewaySettings.from_env({"MAX_INFLIGHT_EVENTS": "5000", "MAX_BATCH_EVENTS": "5000"})


def test_sink_defaults_and_batches_in_flight() -> None:
    assert SinkSettings.from_env({}) == SinkSettings()
    assert SinkSettings().batches_in_flight == 8
    assert SinkSettings.from_env({"SINK_BATCHES_IN_FLIGHT": "4"}).batches_in_flight == 4
    with pytest.raises(SettingsError) as info:
        SinkSettings.from_env({"SINK_BATCHES_IN_FLIGHT": "0"})
    assert str(info.value).startswith("SINK_BATCHES_IN_FLIGHT=0: must be at least 1")
    assert SinkSettings().max_inflight_bytes == 64 * 1024 * 1024
    assert SinkSettings.from_env({"SINK_MAX_INFLIGHT_BYTES": "1048576"}).max_inflight_bytes == 1048576
    with pytest.raises(SettingsError) as info:
        SinkSettings.from_env({"SINK_MAX_INFLIGHT_BYTES": "0"})
    assert str(info.value).startswith("SINK_MAX_INFLIGHT_BYTES=0: must be at least 1")


def test_sink_batch_linger_is_bounded() -> None:
    assert SinkSettings().batch_linger_ms == 20
    assert SinkSettings.from_env({"SINK_BATCH_LINGER_MS": "0"}).batch_linger_ms == 0
    with pytest.raises(SettingsError) as info:
        SinkSettings.from_env({"SINK_BATCH_LINGER_MS": "5001"})
    assert str(info.value) == "SINK_BATCH_LINGER_MS=5001: must be at most 5000"


def test_event_loop_is_uvloop_when_installed_unless_asyncio_is_asked_for() -> None:
    assert importlib.util.find_spec("uvloop") is not None, "a dev dependency"
    for settings in (GatewaySettings, SinkSettings):
        assert settings.from_env({}).event_loop == "uvloop"
        assert settings.from_env({"EVENT_LOOP": "auto"}).event_loop == "uvloop"
        assert settings.from_env({"EVENT_LOOP": "Asyncio"}).event_loop == "asyncio"


def test_event_loop_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    assert GatewaySettings.from_env({}).event_loop == "asyncio"
    assert SinkSettings.from_env({"EVENT_LOOP": "auto"}).event_loop == "asyncio"
    with pytest.raises(SettingsError) as info:
        GatewaySettings.from_env({"EVENT_LOOP": "uvloop"})
    assert str(info.value) == "EVENT_LOOP='uvloop': uvloop is not installed; use auto or asyncio"
