"""What the gateway knows of the cluster: which topics exist, and whether Kafka answers at all.

Refreshed in the background (every 2 s; every 0.5 s while Kafka does not answer) through a fetch
function each publisher supplies. It lets a request for a topic missing from the cluster fail fast
(404), and while Kafka does not answer, requests fail fast (503) instead of queueing behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from ingest_core.errors import KafkaUnavailable

log = logging.getLogger(__name__)

# fetch(None) -> every topic; fetch(name) -> the topics of a request about that one (it or nothing).
# Raises anything when Kafka does not answer in time.
FetchTopics = Callable[[str | None], Awaitable[set[str]]]


class TopicWatch:
    def __init__(self, fetch: FetchTopics, *, refresh_s: float = 2.0, down_refresh_s: float = 0.5) -> None:
        self._fetch = fetch
        self._refresh_s = refresh_s
        self._down_refresh_s = down_refresh_s
        self.topics: frozenset[str] = frozenset()
        self.kafka_ok = False
        # Topics found missing, until when: a flood of requests for a deleted topic costs one
        # metadata request a second, not one each.
        self._missing_until: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """First refresh, then refresh in the background; raises KafkaUnavailable if Kafka is silent."""
        if not await self.refresh():
            raise KafkaUnavailable("Kafka did not answer a metadata request at start")
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> bool:
        try:
            topics = await self._fetch(None)
        except Exception as exc:  # noqa: BLE001 - any failure means "Kafka is not answering"
            if self.kafka_ok:
                log.warning("Kafka is not answering metadata requests: %s", exc)
            self.kafka_ok = False
            return False
        self.topics = frozenset(topics)
        if not self.kafka_ok:
            log.info("Kafka answers metadata requests (%d topics)", len(self.topics))
        self.kafka_ok = True
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s if self.kafka_ok else self._down_refresh_s)
            await self.refresh()

    async def exists(self, topic: str) -> bool:
        """Is the topic on the cluster? Asked anew (bounded) when the last snapshot lacks it.

        Raises KafkaUnavailable when Kafka does not answer.
        """
        if topic in self.topics:
            return True
        if self._missing_until.get(topic, 0.0) > time.monotonic():
            return False
        try:
            found = topic in await self._fetch(topic)
        except Exception:  # noqa: BLE001 - any failure means "Kafka is not answering"
            raise KafkaUnavailable() from None
        if found:
            self.topics = self.topics | {topic}
            self._missing_until.pop(topic, None)
        elif len(self._missing_until) < 10_000:
            self._missing_until[topic] = time.monotonic() + 1.0
        return found
