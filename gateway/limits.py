"""Rate limits: a token bucket for requests and one for events per caller (a principal, or the client
address of an anonymous request), per gateway process; over either, the request is refused with
``RateLimited`` and the seconds after which it would pass.

The callers' buckets are bounded (``max_callers``, least recently used dropped first): a dropped
caller starts again with full buckets, which errs on letting requests through, never on refusing.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from ingest_core.auth import Limits
from ingest_core.errors import RateLimited

DEFAULT_MAX_CALLERS = 100_000


class _Buckets:
    __slots__ = ("events", "requests", "stamp")

    def __init__(self, limits: Limits, now: float) -> None:
        self.requests = float(limits.requests_burst)
        self.events = float(limits.events_burst)
        self.stamp = now


def _wait(tokens: float, wanted: float, rate: float) -> int:
    """Whole seconds until ``tokens`` refilled at ``rate`` reach ``wanted`` (at least 1)."""
    return max(1, math.ceil((wanted - tokens) / rate))


class RateLimiter:
    def __init__(
        self, max_callers: int = DEFAULT_MAX_CALLERS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._callers: OrderedDict[str, _Buckets] = OrderedDict()
        self._max = max_callers
        self._clock = clock

    def __len__(self) -> int:
        return len(self._callers)

    def take(self, caller: str, limits: Limits, requests: int = 1, events: int = 0) -> None:
        """Take ``requests`` and ``events`` tokens from ``caller``'s buckets, or none of either and
        raise RateLimited. More events than a bucket holds pass when it is full, leaving it in debt:
        a batch larger than the burst is slowed, never refused for ever."""
        if limits.unlimited:
            return
        now = self._clock()
        buckets = self._callers.get(caller)
        if buckets is None:
            buckets = self._callers[caller] = _Buckets(limits, now)
            if len(self._callers) > self._max:
                self._callers.popitem(last=False)
        else:
            self._callers.move_to_end(caller)
            elapsed = now - buckets.stamp
            if limits.requests_per_s is not None:
                buckets.requests = min(
                    limits.requests_burst, buckets.requests + elapsed * limits.requests_per_s
                )
            if limits.events_per_s is not None:
                buckets.events = min(limits.events_burst, buckets.events + elapsed * limits.events_per_s)
            buckets.stamp = now
        wait = 0
        if limits.requests_per_s is not None and requests:
            wanted = min(requests, limits.requests_burst)
            if buckets.requests < wanted:
                wait = _wait(buckets.requests, wanted, limits.requests_per_s)
        if limits.events_per_s is not None and events:
            wanted = min(events, limits.events_burst)
            if buckets.events < wanted:
                wait = max(wait, _wait(buckets.events, wanted, limits.events_per_s))
        if wait:
            raise RateLimited(wait)
        if limits.requests_per_s is not None:
            buckets.requests -= requests
        if limits.events_per_s is not None:
            buckets.events -= events
