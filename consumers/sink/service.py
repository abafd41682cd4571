"""The sink service: decode each polled batch, dead-letter the bad records, persist the good ones.

One batch = one store transaction. Store or DLQ unavailable: retry with capped exponential backoff,
without committing, until it works or the service stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from confluent_kafka import Consumer, Message, TopicPartition

from consumers.dlq import DeadLetter, DeadLetterError, DeadLetterWriter
from consumers.runner import BatchRunner
from consumers.sink.decode import Decoder
from consumers.sink.metrics import SinkMetrics
from consumers.sink.settings import SinkSettings
from ingest_core.registry import Registry
from ingest_core.store import Row, RowsRefused, Store, StoreUnavailable

log = logging.getLogger(__name__)

# Lag is updated at most this often: polls come up to once per SINK_BATCH_LINGER_MS, and each update
# costs a call per assigned partition (hundreds, with many datasets), for a gauge scraped every
# few seconds.
_LAG_INTERVAL_S = 1.0


class SinkService:
    def __init__(
        self, settings: SinkSettings, registry: Registry, store: Store, metrics: SinkMetrics
    ) -> None:
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._decoder = Decoder(registry)
        self._dlq = DeadLetterWriter(
            settings.kafka_bootstrap_servers,
            settings.dlq_topic,
            "ingest-sink",
            on_restart=metrics.dlq_restarts.inc,
        )
        self.runner = BatchRunner(
            settings.kafka_bootstrap_servers,
            settings.group,
            registry.entry_topics(),
            self.handle_batch,
            batch_size=settings.batch_size,
            linger_s=settings.batch_linger_ms / 1000,
            max_in_flight=settings.batches_in_flight,
            max_in_flight_bytes=settings.max_inflight_bytes,
            client_id="ingest-sink",
            after_poll=self._update_lag,
            membership=settings.membership,
        )
        self.store_ok = False
        self._lag_updated = -_LAG_INTERVAL_S

    def reload(self, registry: Registry) -> None:
        """A reloaded registry: its records decoded from the next batch on, its topics consumed."""
        self._decoder = Decoder(registry)
        self.runner.subscribe(registry.entry_topics())

    @property
    def dead_letters(self) -> DeadLetterWriter:
        return self._dlq

    def ready(self) -> bool:
        return self.store_ok and not self.runner.stopping

    async def run(self) -> None:
        await self._store.migrate()
        self.store_ok = True
        self._metrics.store_up.set(1)
        await self.runner.run()

    async def close(self) -> None:
        await self._dlq.close()

    async def handle_batch(self, messages: Sequence[Message]) -> bool:
        """Persist or dead-letter every message; True when done, False when stopping first."""
        start = time.perf_counter()
        rows, refused = self._decoder.decode_all(messages)
        letters = [DeadLetter(messages[i], out.reason, out.error) for i, out in refused]
        self._metrics.consumed.inc(len(messages))
        self._metrics.batch_size.observe(len(messages))
        backoff = 0.1
        while True:
            try:
                # Sent letters leave the list: a retry sends only the others.
                await self._dead_letter(letters)
                inserted = await self._persist(rows, messages)
                break
            except (StoreUnavailable, DeadLetterError) as exc:
                self._metrics.store_errors.inc()
                self._metrics.store_up.set(0)
                self.store_ok = False
                log.warning("batch not persisted, retrying in %.1fs: %s", backoff, exc)
                if self.runner.stopping:
                    return False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._settings.max_backoff_ms / 1000)
        if not self.store_ok:
            log.info("store writes succeed again")
        self.store_ok = True
        self._metrics.store_up.set(1)
        self._metrics.persisted.inc(inserted)
        self._metrics.duplicates.inc(len(rows) - inserted)
        self._metrics.batch_seconds.observe(time.perf_counter() - start)
        return True

    async def _persist(self, rows: list[Row], messages: Sequence[Message]) -> int:
        """Insert the rows; those the database refuses for their data go to the dead-letter topic.

        Such a row (one the decoder let through) would fail its batch on every retry, stalling the
        sink. The batch is then written by halves, down to the refused rows alone; the halves
        already written are duplicates, ignored, if the batch is retried or redelivered.
        """
        try:
            return await self._store.insert_records(rows)
        except RowsRefused:
            pass
        inserted, refused = await self._insert_by_halves(rows)
        at = {(m.topic() or "", m.partition() or 0, m.offset() or 0): m for m in messages}  # as decoded
        letters = [DeadLetter(at[(r.topic, r.partition, r.offset)], "store_refused", e) for r, e in refused]
        if letters:  # none: the refusal did not recur row by row, and everything is written
            log.warning("%d of %d rows refused by the store, dead-lettered", len(letters), len(rows))
            await self._dead_letter(letters)
        return inserted

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        """Send the letters to the dead-letter topic and count them; those sent leave the list.

        Raises DeadLetterError, the list then holding the letters Kafka did not acknowledge.
        """
        if not letters:
            return
        try:
            await self._dlq.send(letters)
        except DeadLetterError as exc:
            unsent = {id(letter) for letter in exc.undelivered}
            self._count_letters(letter for letter in letters if id(letter) not in unsent)
            letters[:] = exc.undelivered
            raise
        self._count_letters(letters)
        letters.clear()

    def _count_letters(self, letters: Iterable[DeadLetter]) -> None:
        for letter in letters:
            self._metrics.dead_lettered.labels(letter.reason).inc()

    async def _insert_by_halves(self, rows: list[Row]) -> tuple[int, list[tuple[Row, str]]]:
        try:
            return await self._store.insert_records(rows), []
        except RowsRefused as exc:
            if len(rows) == 1:
                return 0, [(rows[0], str(exc)[:1000])]
        half = len(rows) // 2
        first, first_refused = await self._insert_by_halves(rows[:half])
        second, second_refused = await self._insert_by_halves(rows[half:])
        return first + second, first_refused + second_refused

    def _update_lag(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        """Lag per partition; called by the runner between polls (never from a batch)."""
        now = time.monotonic()
        if not assigned or now - self._lag_updated < _LAG_INTERVAL_S:
            return
        try:
            positions = consumer.position(assigned)
        except Exception:  # noqa: BLE001 - lag is best-effort observability, never a failure
            return
        for tp in positions:
            if tp.offset < 0:
                continue
            _low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), cached=True)
            if high >= 0:
                self._metrics.lag.labels(tp.topic, str(tp.partition)).set(max(high - tp.offset, 0))
                # Only once a partition has a position: right after an assignment none has, and the
                # first figures should not wait another interval.
                self._lag_updated = now
