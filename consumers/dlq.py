"""The dead-letter topic: bad records set aside with their original bytes, key and headers.

Added headers name where the record came from and why it was set aside: ``dlq.source.topic``,
``dlq.source.partition``, ``dlq.source.offset``, ``dlq.error``, ``dlq.reason``, ``dlq.service``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger(__name__)


class DeadLetterError(RuntimeError):
    """Some records could not be written to the dead-letter topic; do not commit past them."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message: Message
    reason: str
    error: str


class DeadLetterWriter:
    def __init__(self, bootstrap: str, topic: str, service: str, timeout_s: float = 10.0) -> None:
        self.topic = topic
        self._service = service.encode()
        self._timeout_s = timeout_s
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": f"{service}-dlq",
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(timeout_s * 1000),
                "logger": logging.getLogger("librdkafka.dlq"),
            }
        )

    def _send_all(self, letters: Sequence[DeadLetter]) -> list[KafkaError]:
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        for letter in letters:
            msg = letter.message
            original = msg.headers() or []
            # Records from the consumer carry headers as a list of pairs, never a dict.
            headers: list[tuple[str, str | bytes | None]] = list(
                original.items() if isinstance(original, dict) else original
            )
            headers += [
                ("dlq.source.topic", (msg.topic() or "").encode()),
                ("dlq.source.partition", str(msg.partition()).encode()),
                ("dlq.source.offset", str(msg.offset()).encode()),
                ("dlq.error", letter.error.encode()[:1000]),
                ("dlq.reason", letter.reason.encode()),
                ("dlq.service", self._service),
            ]
            self._producer.produce(
                self.topic, msg.value(), msg.key(), headers=headers, on_delivery=on_delivery
            )
        remaining = self._producer.flush(self._timeout_s)
        if remaining:
            errors.append(KafkaError(KafkaError._MSG_TIMED_OUT, f"{remaining} dead letters not acknowledged"))
        return errors

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Write every letter and wait for Kafka's acknowledgement; raises DeadLetterError."""
        if not letters:
            return
        errors = await asyncio.to_thread(self._send_all, letters)
        if errors:
            raise DeadLetterError(f"{len(errors)} dead letters failed: {errors[0].str()}")

    async def close(self) -> None:
        await asyncio.to_thread(self._producer.flush, self._timeout_s)
