"""``AsyncIngestClient``: events buffered per dataset and sent in batches to
``POST /v2/data/in/{dataset}``, each batch with a msgid of its own that it keeps across every
retry (so a retried batch is stored once: the gateway makes its event ids from the msgid).

- A batch leaves when it holds ``max_batch_events`` events or ``max_batch_bytes`` bytes, or
  ``linger_ms`` after its first event; ``flush()`` sends every batch at once.
- Bodies over ``gzip_min_bytes`` are sent gzip-compressed.
- Retries only where one can help: no answer, 408, 429, 502, 503, 504; exponential backoff with
  full jitter, never shorter than the gateway's ``Retry-After``, for at most ``max_retry_s``. Any
  other answer fails the batch at once with the gateway's code, message and the event at fault;
  with ``on_invalid="split"`` the event at fault is failed and the rest sent again.
- At most ``max_buffer_events`` events are pending (buffered or in flight): beyond, ``send``
  waits, or raises ``BufferFull`` with ``block=False``. At most ``max_in_flight`` requests at once.
- ``send`` returns a future that resolves once Kafka holds the event's batch (the gateway's 200).
"""

from __future__ import annotations

import asyncio
import gzip
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp
import orjson

from ingest_client.errors import BufferFull, ClientClosed, SendError

RETRIABLE = frozenset({408, 429, 502, 503, 504})
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 10.0


@dataclass
class Counters:
    """What the client has done so far: events acknowledged and failed, requests retried."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    batches: int = 0


class _Buffer:
    """A dataset's events waiting for their batch, end to end in one bytearray: orjson's output
    keeps the ~4 KiB it was written into, which made a pending event cost 4 KiB (bench/NOTES.md,
    "the client's memory")."""

    __slots__ = ("data", "ends", "futures", "timer")

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends: list[int] = []  # where each event ends in ``data``
        self.futures: list[asyncio.Future[None]] = []
        self.timer: asyncio.TimerHandle | None = None

    def parts(self) -> list[bytes]:
        view, start, out = memoryview(self.data), 0, []
        for end in self.ends:
            out.append(bytes(view[start:end]))
            start = end
        return out


def backoff_s(attempt: int, draw: float) -> float:
    """Full jitter: a uniform draw between 0 and the exponential bound of ``attempt``."""
    return draw * min(BACKOFF_CAP_S, BACKOFF_BASE_S * (1 << min(attempt, 30)))


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0  # an HTTP date: rare from the gateway; the backoff alone applies


class AsyncIngestClient:
    """Send events to the gateway at ``base_url`` (``api_key``: sent as ``X-API-KEY``)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        api_key: str | None = None,
        *,
        max_batch_events: int = 500,
        max_batch_bytes: int = 1_000_000,
        linger_ms: float = 50.0,
        max_in_flight: int = 4,
        max_buffer_events: int = 10_000,
        max_retry_s: float = 60.0,
        request_timeout_s: float = 30.0,
        gzip_min_bytes: int = 1024,
        on_invalid: Literal["fail", "split"] = "fail",
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        if max_batch_events < 1 or max_buffer_events < 1 or max_in_flight < 1:
            raise ValueError("max_batch_events, max_buffer_events and max_in_flight must be at least 1")
        self._base = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["X-API-KEY"] = api_key
        self._max_events = max_batch_events
        self._max_bytes = max_batch_bytes
        self._linger_s = linger_ms / 1000
        self._max_buffer = max_buffer_events
        self._max_retry_s = max_retry_s
        self._gzip_min = gzip_min_bytes
        self._split = on_invalid == "split"
        self._sleep, self._clock = sleep, clock  # a fake clock's, in tests
        self._draw = draw
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._buffers: dict[str, _Buffer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0  # events buffered or in flight
        self._room = asyncio.Condition()
        self._closed = False
        self.counters = Counters()

    # Sending ---------------------------------------------------------------------------------

    async def send(self, dataset: str, event: Any, block: bool = True) -> asyncio.Future[None]:
        """Buffer ``event`` for ``dataset``; the future resolves when its batch is acknowledged, or
        fails with SendError. Waits while the buffer is full (raises BufferFull with ``block=False``)."""
        part = orjson.dumps(event)
        await self._reserve(1, block)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        buffer = self._buffers.get(dataset)
        if buffer is None:
            buffer = self._buffers[dataset] = _Buffer()
        elif len(buffer.data) + len(part) > self._max_bytes:
            self._dispatch(dataset)
            buffer = self._buffers[dataset] = _Buffer()
        buffer.data += part
        buffer.ends.append(len(buffer.data))
        buffer.futures.append(future)
        if len(buffer.ends) >= self._max_events or len(buffer.data) >= self._max_bytes:
            self._dispatch(dataset)
        elif buffer.timer is None:
            buffer.timer = asyncio.get_running_loop().call_later(self._linger_s, self._dispatch, dataset)
        return future

    async def send_batch(self, dataset: str, events: Iterable[Any]) -> None:
        """Send ``events`` as one batch now (not buffered); returns once acknowledged, raises
        SendError otherwise (with ``on_invalid="split"``, the first event refused)."""
        parts = [orjson.dumps(e) for e in events]
        if not parts:
            return
        await self._reserve(len(parts), True)
        futures = [asyncio.get_running_loop().create_future() for _ in parts]
        await self._deliver(dataset, parts, futures)
        for future in futures:
            future.result()

    async def flush(self) -> None:
        """Send every buffered batch now, and wait until each is acknowledged or failed."""
        for dataset in list(self._buffers):
            self._dispatch(dataset)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Flush, then release the connections; nothing can be sent afterwards."""
        if self._closed:
            return
        self._closed = True
        await self.flush()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> AsyncIngestClient:
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    # Internals -------------------------------------------------------------------------------

    async def _reserve(self, events: int, block: bool) -> None:
        if self._closed:
            raise ClientClosed("the client is closed")

        def room() -> bool:  # a batch larger than the whole buffer goes alone
            return self._pending == 0 or self._pending + events <= self._max_buffer

        if not room():
            if not block:
                raise BufferFull(f"{self._pending} events pending, at most {self._max_buffer}")
            async with self._room:
                await self._room.wait_for(room)
        self._pending += events

    async def _release(self, events: int) -> None:
        self._pending -= events
        async with self._room:
            self._room.notify_all()

    def _dispatch(self, dataset: str) -> None:
        buffer = self._buffers.pop(dataset, None)
        if buffer is None or not buffer.ends:
            return
        if buffer.timer is not None:
            buffer.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._deliver(dataset, buffer.parts(), buffer.futures))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, dataset: str, parts: list[bytes], futures: list[asyncio.Future[None]]) -> None:
        count = len(parts)
        try:
            async with self._in_flight:
                while parts:
                    try:
                        await self._post(dataset, parts)
                    except SendError as error:
                        at = error.index
                        if self._split and at is not None and 0 <= at < len(parts) and len(parts) > 1:
                            # Nothing of a refused batch was published: the rest go as a new batch.
                            self._fail([futures.pop(at)], error)
                            del parts[at]
                            continue
                        self._fail(futures, error)
                    else:
                        self.counters.sent += len(parts)
                        for future in futures:
                            if not future.done():
                                future.set_result(None)
                    break
        except BaseException as exc:  # cancelled, or a bug: no future is left waiting
            self._fail(futures, SendError(f"not sent: {exc!r}", retriable=True))
            raise
        finally:
            await self._release(count)

    def _fail(self, futures: list[asyncio.Future[None]], error: SendError) -> None:
        for future in futures:
            if not future.done():
                self.counters.failed += 1
                future.set_exception(error)
                future.exception()  # marked retrieved: a caller may ignore its futures

    def _body(self, parts: list[bytes]) -> tuple[bytes, dict[str, str]]:
        msgid = str(uuid.uuid4())
        data = parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"
        body = b'{"id":"api.data.in","ver":"v2","ts":"%d","params":{"msgid":"%s"},"data":%s}' % (
            int(time.time() * 1000), msgid.encode(), data,
        )  # fmt: skip
        if len(body) <= self._gzip_min:
            return body, self._headers
        return gzip.compress(body, compresslevel=1), {**self._headers, "Content-Encoding": "gzip"}

    async def _post(self, dataset: str, parts: list[bytes]) -> None:
        """One batch, retried with its msgid until acknowledged; raises SendError."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body, headers = self._body(parts)  # made once: every retry sends the same msgid
        url = f"{self._base}/v2/data/in/{dataset}"
        deadline = self._clock() + self._max_retry_s
        attempt = 0
        self.counters.batches += 1
        while True:
            status: int | None = None
            try:
                async with self._session.post(url, data=body, headers=headers) as r:
                    status, answer, after = r.status, await r.read(), r.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError) as exc:
                answer, after, reason = b"", None, f"no answer: {exc!r}"
            if status == 200:
                return
            if status is not None:
                code, reason = _error_of(answer)
                if status not in RETRIABLE:
                    raise SendError(reason, status, code)
            wait = max(backoff_s(attempt, self._draw()), _retry_after(after))
            if self._clock() + wait > deadline:
                raise SendError(
                    f"gave up after {attempt + 1} attempts ({self._max_retry_s:g} s): {reason}",
                    status, None if status is None else _error_of(answer)[0], retriable=True,
                )  # fmt: skip
            self.counters.retried += 1
            attempt += 1
            await self._sleep(wait)


def _error_of(answer: bytes) -> tuple[str | None, str]:
    """The gateway's error code and message, from its envelope."""
    try:
        error = orjson.loads(answer).get("error") or {}
        return error.get("code"), str(error.get("message", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return None, answer[:200].decode(errors="replace")
