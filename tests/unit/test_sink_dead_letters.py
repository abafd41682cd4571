"""The sink's bookkeeping of dead letters when Kafka acknowledges only some of them: a retry sends
only the others, and each letter is counted once. (Sending them for real: tests/integration/test_sink.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import Message
from prometheus_client import generate_latest

from consumers.dlq import DeadLetter, DeadLetterError
from consumers.sink.metrics import SinkMetrics
from consumers.sink.service import SinkService
from consumers.sink.settings import SinkSettings
from ingest_core.registry import load_registry
from tests.support.gateway import write_registry
from tests.support.sink import metric_value


class _HalfDeliveringWriter:
    """Acknowledges the first letter of every send, fails the rest."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        self.sent.append([letter.error for letter in letters])
        if len(letters) > 1:
            raise DeadLetterError("not acknowledged", letters[1:])


def _letter(name: str) -> DeadLetter:
    return DeadLetter(cast(Message, object()), "not_json", name)


async def test_a_retry_sends_only_the_letters_kafka_did_not_acknowledge(tmp_path: Path) -> None:
    registry = load_registry(
        write_registry(tmp_path / "topics.yaml", [{"id": "example", "entry_topic": "t"}])
    )
    metrics = SinkMetrics()
    # Nothing here connects: the consumer and the producers are only created.
    service = SinkService(SinkSettings(), registry, cast(Any, None), metrics)
    writer = _HalfDeliveringWriter()
    service._dlq = cast(Any, writer)
    letters = [_letter("a"), _letter("b"), _letter("c")]

    for left in (["b", "c"], ["c"]):
        with pytest.raises(DeadLetterError):
            await service._dead_letter(letters)
        assert [letter.error for letter in letters] == left
    await service._dead_letter(letters)

    assert letters == []
    assert writer.sent == [["a", "b", "c"], ["b", "c"], ["c"]]
    text = generate_latest(metrics.registry).decode()
    assert metric_value(text, 'sink_records_dead_lettered_total{reason="not_json"}') == 3
