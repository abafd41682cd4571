"""How much one gateway process takes on at once: ingestion requests, the bytes of their bodies, and
their events. Each has a bound (``MAX_INFLIGHT_REQUESTS``, ``MAX_INFLIGHT_BYTES``,
``MAX_INFLIGHT_EVENTS``); a request that would go beyond any of them is answered 503 ``OVERLOADED``
at once.

The request count alone left memory to the clients: 256 concurrent 10,000-event requests (3 MB
bodies each) took the process from 63 to 538 MiB, every one of them answered 200. Bytes are
checked before the body is read when its length is announced. A body sent without a length
(chunked) holds ``MAX_BODY_BYTES``, the most it may be, until it has been read, and then its real
size. A request keeps its share until it is answered, the wait for Kafka included: its records are
then in the producer's queue, about as large as its body.

Plain integers on the event loop: admitting and releasing cost a few additions per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import Overloaded


@dataclass(slots=True)
class Admission:
    max_requests: int
    max_bytes: int
    max_events: int
    requests: int = 0
    bytes: int = 0
    events: int = 0

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
