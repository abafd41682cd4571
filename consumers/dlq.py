"""The dead-letter topic: bad records set aside with their original bytes, key and headers.

Added headers name where the record came from and why it was set aside: ``dlq.source.topic``,
``dlq.source.partition``, ``dlq.source.offset``, ``dlq.error``, ``dlq.reason``, ``dlq.service``.

Whatever keeps a letter from Kafka is a DeadLetterError, which the caller retries without
committing: a record refused before it is even sent (too large, a producer that has failed) must
stop the commit, not the process. A producer that librdkafka declares failed for good (a fatal
error of the idempotent producer: nothing it is given afterwards is sent) is replaced by a new one
before the next letters.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ingest_core.kafka import client_settings

log = logging.getLogger(__name__)

# librdkafka refuses a record over its message.max.bytes (1,000,000 by default) before sending it.
# The broker checks the dead-letter topic's own limit anyway (see ingest_core.topics_cli), so the
# client's is set at the broker's bound on any request (socket.request.max.bytes, 100 MiB): a letter
# refused for its size then goes through on a later retry once the topic's limit is raised, with no
# restart.
_CLIENT_MAX_MESSAGE_BYTES = 100 * 1024 * 1024


class DeadLetterError(RuntimeError):
    """Some records could not be written to the dead-letter topic; do not commit past them."""

    def __init__(self, message: str, undelivered: Sequence[DeadLetter] = ()) -> None:
        super().__init__(message)
        self.undelivered = list(undelivered)  # the letters to send again


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message: Message
    reason: str
    error: str


class DeadLetterWriter:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        service: str,
        timeout_s: float = 10.0,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._service = service.encode()
        self._client_id = f"{service}-dlq"
        self._timeout_s = timeout_s
        self._on_restart = on_restart
        # Sends run in worker threads, possibly two at once: the replacement is made under a lock.
        self._lock = threading.Lock()
        self._failed: str | None = None  # librdkafka's fatal error, until the producer is replaced
        self._producer = self._new_producer()

    def _new_producer(self) -> Producer:
        return Producer(
            client_settings(
                {
                    "bootstrap.servers": self._bootstrap,
                    "client.id": self._client_id,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "message.timeout.ms": int(self._timeout_s * 1000),
                    "message.max.bytes": _CLIENT_MAX_MESSAGE_BYTES,
                    "logger": logging.getLogger("librdkafka.dlq"),
                }
            )
        )

    def _flush(self, producer: Producer) -> int:
        """``producer.flush()``: the records still queued after the timeout."""
        try:
            return producer.flush(self._timeout_s)
        except KafkaException as exc:
            # confluent-kafka raises librdkafka's fatal error from flush() (or poll()), once, rather
            # than passing it to an error_cb, and stops serving reports there: serve the rest.
            if not exc.args[0].fatal():
                raise
            self._failed = str(exc)
        log.error("the dead-letter producer failed for good, replacing it: %s", self._failed)
        return producer.flush(self._timeout_s)

    def _current_producer(self) -> Producer:
        with self._lock:
            if self._failed is not None:
                # The failed producer has already reported every letter it held (flush), and a send
                # still flushing it keeps its own reference.
                self._producer = self._new_producer()
                self._failed = None
                if self._on_restart is not None:
                    self._on_restart()
            return self._producer

    def _send_all(self, letters: Sequence[DeadLetter]) -> tuple[list[DeadLetter], list[KafkaError]]:
        """The letters Kafka did not acknowledge, and why."""
        producer = self._current_producer()
        errors: list[KafkaError] = []
        delivered = [False] * len(letters)

        def on_delivery(i: int, err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                delivered[i] = True
            else:
                errors.append(err)

        for i, letter in enumerate(letters):
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
            try:
                producer.produce(
                    self.topic, msg.value(), msg.key(), headers=headers,
                    on_delivery=functools.partial(on_delivery, i),
                )  # fmt: skip
            except KafkaException as exc:
                # Refused before sending. The batch cannot be committed anyway: stop here, and let
                # the letters already queued be delivered (a retry sends only the others).
                errors.append(exc.args[0])
                break
            except BufferError:
                errors.append(KafkaError(KafkaError._QUEUE_FULL, "the dead-letter producer's queue is full"))
                break
        remaining = self._flush(producer)
        if remaining:
            errors.append(KafkaError(KafkaError._MSG_TIMED_OUT, f"{remaining} dead letters not acknowledged"))
        if any(err.code() == KafkaError._FATAL for err in errors):
            # produce() refused for a fatal error that flush() has not raised (yet).
            self._failed = self._failed or "fatal error"
        return [letter for letter, done in zip(letters, delivered, strict=True) if not done], errors

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Write every letter and wait for Kafka's acknowledgement.

        Raises DeadLetterError, naming the letters not acknowledged: a retry need send only those.
        """
        if not letters:
            return
        undelivered, errors = await asyncio.to_thread(self._send_all, letters)
        if undelivered:
            reason = errors[0].str() if errors else "not acknowledged"
            raise DeadLetterError(
                f"{len(undelivered)} of {len(letters)} dead letters failed: {reason}", undelivered
            )

    async def close(self) -> None:
        await asyncio.to_thread(self._flush, self._producer)

    @property
    def producer(self) -> Producer:
        """The producer the next letters go through (for tests that fail it on purpose)."""
        return self._producer
