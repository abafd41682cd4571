"""How much one gateway process takes on at once: ingestion requests, the bytes of their bodies, and
their events. Each has a bound (``MAX_INFLIGHT_REQUESTS``, ``MAX_INFLIGHT_BYTES``,
``MAX_INFLIGHT_EVENTS``); a request that would go beyond any of them is answered 503 ``OVERLOADED``
at once.

A request holds its share for as long as it is in progress, the wait for Kafka included (its
records are then in the producer's queue, about as large as its body):

    async with admission.hold(announced_bytes) as held:
        ...                       # read the body
        held.resize(len(body))    # a body of unannounced length held the most it may be until read
        held.add_events(count)    # before publishing

Bytes are checked before the body is read when its length is announced. Plain integers on the
event loop: taking and giving back a share costs a few additions per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from ingest_core.errors import Overloaded


@dataclass(slots=True)
class Admission:
    max_requests: int
    max_bytes: int
    max_events: int
    requests: int = 0
    bytes: int = 0
    events: int = 0

    def hold(self, length: int) -> Held:
        """A request's share, for ``async with``: a body of at most ``length`` bytes is admitted on
        entry (raises Overloaded), everything it held is given back on exit."""
        return Held(self, length)

    def admit(self, length: int) -> None:
        """Take on a request whose body is at most ``length`` bytes; raises Overloaded."""
        if self.requests >= self.max_requests or self.bytes + length > self.max_bytes:
            raise Overloaded()
        self.requests += 1
        self.bytes += length

    def resize(self, held: int, length: int) -> None:
        """A request admitted for ``held`` bytes turned out to have ``length`` (at most ``held``)."""
        self.bytes += length - held

    def add_events(self, count: int) -> None:
        """An admitted request's ``count`` events are about to be published; raises Overloaded."""
        if self.events + count > self.max_events:
            raise Overloaded()
        self.events += count

    def release(self, length: int, events: int) -> None:
        """An admitted request is answered: what it held (``events``: 0 if it never added any)."""
        self.requests -= 1
        self.bytes -= length
        self.events -= events


class Held:
    """One request's share of the bounds (see ``Admission.hold``)."""

    __slots__ = ("_admission", "bytes", "events")

    def __init__(self, admission: Admission, length: int) -> None:
        self._admission = admission
        self.bytes = length
        self.events = 0

    async def __aenter__(self) -> Held:
        self._admission.admit(self.bytes)
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._admission.release(self.bytes, self.events)

    def resize(self, length: int) -> None:
        """The body turned out to be ``length`` bytes (at most what was admitted)."""
        if length != self.bytes:
            self._admission.resize(self.bytes, length)
            self.bytes = length

    def add_events(self, count: int) -> None:
        """The request's ``count`` events are about to be published; raises Overloaded."""
        self._admission.add_events(count)
        self.events = count
