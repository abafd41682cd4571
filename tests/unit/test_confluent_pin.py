"""The fence around ``ingest_core.publish.rdkafka_wakeup``, which reads librdkafka's handle out of
confluent-kafka's C object by offset: the version installed is the pinned one, the pin has an upper
bound, and on it the wake-up pipe really is had (not the silent fallback to the timer). Upgrading
confluent-kafka is then a deliberate act: widen the pin, and these tests say whether it still holds.
"""

from __future__ import annotations

import asyncio
import tomllib
from importlib.metadata import version
from pathlib import Path

from confluent_kafka import Producer
from packaging.requirements import Requirement
from packaging.version import Version

from ingest_core.publish.rdkafka_wakeup import ReportWakeup, producer_handle

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pin() -> Requirement:
    deps = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]["dependencies"]
    (pin,) = [Requirement(d) for d in deps if Requirement(d).name == "confluent-kafka"]
    return pin


def test_the_pin_has_an_upper_bound_and_the_installed_version_is_within_it() -> None:
    pin = _pin()
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in pin.specifier), pin
    assert pin.specifier.contains(Version(version("confluent-kafka"))), (version("confluent-kafka"), pin)


def test_the_pinned_version_gives_the_wakeup_pipe_not_the_timer() -> None:
    producer = Producer({"bootstrap.servers": "127.0.0.1:9", "client.id": "pin-check"})
    assert producer_handle(producer, "pin-check") is not None, "the handle is not where it was"
    loop = asyncio.new_event_loop()
    try:
        wakeup = ReportWakeup.attach(loop, producer, "pin-check")
        assert wakeup is not None, "fell back to the timer"
        wakeup.close()
    finally:
        loop.close()
    producer.flush(0)
