"""Bounded logging of an outage: a line that repeats (librdkafka's ``Connect to ... failed`` for
every reconnect attempt of every client, a consumer's poll error, the gateway's 503 for every
request while Kafka is away) is logged the first time, then
at most once a window, with the count of those held back; the programs' own state changes
(``Kafka is not answering``, ``Kafka answers again``) are logged once each elsewhere.

Lines are of one kind when they differ only in their numbers (ports, thread ids, durations). The
kinds remembered are bounded; past the bound the oldest is forgotten (its next line is let through).
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable

WINDOW_S = 30.0
MAX_KINDS = 256
# The loggers librdkafka's lines go to (see each client's "logger" setting), the consumers' poll
# errors and the gateway's 5xx answers: each gets the filter when logging is configured.
REPEATING_LOGGERS = (
    "librdkafka", "librdkafka.consumer", "librdkafka.dlq", "consumers.runner.poll",
    "gateway.handling.failures",
)  # fmt: skip

_NUMBERS = re.compile(r"\d+")


class _Kind:
    __slots__ = ("held", "since")

    def __init__(self, since: float) -> None:
        self.since = since  # when the last line of this kind was let through
        self.held = 0  # lines held back since then


class RepeatFilter(logging.Filter):
    def __init__(
        self,
        window_s: float = WINDOW_S,
        max_kinds: int = MAX_KINDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._window = window_s
        self._max = max_kinds
        self._clock = clock
        self._kinds: OrderedDict[tuple[str, int, str], _Kind] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = self._clock()
        kind = self._kinds.get(key)
        if kind is None:
            self._kinds[key] = _Kind(now)
            if len(self._kinds) > self._max:
                self._kinds.popitem(last=False)
            return True
        self._kinds.move_to_end(key)
        if now - kind.since < self._window:
            kind.held += 1
            return False
        if kind.held:
            record.msg = (
                f"{record.getMessage()} (and {kind.held} more like it in the last {now - kind.since:.0f} s)"
            )
            record.args = None
        kind.since, kind.held = now, 0
        return True


def bound_repeats(window_s: float = WINDOW_S) -> None:
    """Put a RepeatFilter on each of REPEATING_LOGGERS (one each: their kinds are apart)."""
    for name in REPEATING_LOGGERS:
        logger = logging.getLogger(name)
        for existing in [f for f in logger.filters if isinstance(f, RepeatFilter)]:
            logger.removeFilter(existing)
        logger.addFilter(RepeatFilter(window_s))
