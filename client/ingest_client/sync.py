"""``IngestClient``: the same methods as ``AsyncIngestClient`` for code without an event loop. The
async client runs on an event loop in a thread of its own; ``send`` hands an event to it and
returns a ``concurrent.futures.Future``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar

from ingest_client.aio import AsyncIngestClient, Counters

T = TypeVar("T")


class IngestClient:
    """Takes AsyncIngestClient's arguments (``sleep``, ``clock`` and ``draw`` aside)."""

    def __init__(
        self, base_url: str = "http://127.0.0.1:8080", api_key: str | None = None, **options: Any
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ingest-client", daemon=True)
        self._thread.start()

        async def make() -> AsyncIngestClient:
            return AsyncIngestClient(base_url, api_key, **options)

        self._client = self._run(make())

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def counters(self) -> Counters:
        return self._client.counters

    def send(self, dataset: str, event: Any, block: bool = True) -> concurrent.futures.Future[None]:
        """Buffer ``event``; the future resolves once its batch is acknowledged (or fails with
        SendError). Blocks while the buffer is full (raises BufferFull with ``block=False``)."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def hand_over() -> None:
            inner = await self._client.send(dataset, event, block)
            inner.add_done_callback(lambda f: _copy(f, done))

        self._run(hand_over())
        return done

    def send_batch(self, dataset: str, events: Iterable[Any]) -> None:
        self._run(self._client.send_batch(dataset, list(events)))

    def flush(self) -> None:
        self._run(self._client.flush())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> IngestClient:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


def _copy(source: asyncio.Future[None], target: concurrent.futures.Future[None]) -> None:
    error = source.exception()
    if error is None:
        target.set_result(None)
    else:
        target.set_exception(error)
