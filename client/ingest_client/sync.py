"""``IngestClient``: the same methods as ``AsyncIngestClient`` for code without an event loop.

The async client runs on an event loop in a thread of its own. ``send`` puts the event on a
bounded hand-over queue and returns a ``concurrent.futures.Future`` at once; a task on the loop
takes the events off the queue into the async client. Handing each event over with
``run_coroutine_threadsafe`` and waiting for it cost a thread switch per event, and ran several
times slower (bench/NOTES.md, "the blocking client")."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Coroutine, Iterable
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from ingest_client.aio import AsyncIngestClient, Counters
from ingest_client.errors import BufferFull, ClientClosed

T = TypeVar("T")
HAND_OVER_EVENTS = 10_000  # events between the caller's thread and the loop's, at most
_STOP = object()


class IngestClient:
    """Takes AsyncIngestClient's arguments (``sleep``, ``clock`` and ``draw`` aside)."""

    def __init__(
        self, base_url: str = "http://127.0.0.1:8080", api_key: str | None = None, **options: Any
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(HAND_OVER_EVENTS)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ingest-client", daemon=True)
        self._thread.start()
        self._waiting = False  # the loop's task is waiting for the queue to fill
        self._closed = False

        async def start() -> tuple[AsyncIngestClient, asyncio.Event]:
            return AsyncIngestClient(base_url, api_key, **options), asyncio.Event()

        async def pump() -> asyncio.Task[None]:
            return asyncio.create_task(self._pump())

        self._client, self._wake = self._run(start())
        self._pumping = self._run(pump())  # once what it uses is in place

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def counters(self) -> Counters:
        return self._client.counters

    def send(self, dataset: str, event: Any, block: bool = True) -> concurrent.futures.Future[None]:
        """Buffer ``event``; the future resolves once its batch is acknowledged (or fails with
        SendError). Blocks while the buffers are full (raises BufferFull with ``block=False``)."""
        if self._closed:
            raise ClientClosed("the client is closed")
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            self._queue.put((dataset, event, done), block=block)
        except queue.Full:
            raise BufferFull(f"{HAND_OVER_EVENTS} events waiting to be handed over") from None
        if self._waiting:
            self._loop.call_soon_threadsafe(self._wake.set)
        return done

    def send_batch(self, dataset: str, events: Iterable[Any]) -> None:
        self._run(self._client.send_batch(dataset, list(events)))

    def flush(self) -> None:
        """Send everything handed over so far, and wait until each is acknowledged or failed."""
        self._queue.join()
        self._run(self._client.flush())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
            self._queue.put(_STOP)
            self._loop.call_soon_threadsafe(self._wake.set)
            self._run(self._finish())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    async def _finish(self) -> None:
        await self._pumping
        await self._client.close()

    async def _pump(self) -> None:
        """On the loop: events off the hand-over queue into the async client."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                self._wake.clear()
                self._waiting = True
                if self._queue.empty():  # checked after the flag: a put before it is seen here
                    await self._wake.wait()
                self._waiting = False
                continue
            if item is _STOP:
                self._queue.task_done()
                return
            dataset, event, done = item
            try:
                inner = await self._client.send(dataset, event)
            except Exception as exc:  # noqa: BLE001 (handed to the caller's future)
                done.set_exception(exc)
            else:
                inner.add_done_callback(partial(_copy, target=done))
            self._queue.task_done()

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
