"""An outage's repeated lines are logged once, then once a window with the count held back."""

from __future__ import annotations

import logging

import pytest

from ingest_core.log_repeats import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeats_are_held_back_and_summarised_once_a_window(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logger = logging.getLogger("test.repeats")
    repeat_filter = RepeatFilter(window_s=30, clock=clock)
    logger.addFilter(repeat_filter)
    try:
        with caplog.at_level(logging.INFO, logger="test.repeats"):
            for i in range(600):  # 20 connection attempts a second for 30 s, two clients
                clock.now = i * 0.05
                logger.error(
                    "FAIL [producer-%d]: Connect to 127.0.0.1:%d failed (after %dms)", 1, 9092, i % 7
                )
                logger.error(
                    "FAIL [producer-%d]: Connect to 127.0.0.1:%d failed (after %dms)", 2, 9092, i % 5
                )
            logger.info("a line of another kind")
            clock.now = 31.0
            logger.error("FAIL [producer-%d]: Connect to 127.0.0.1:%d failed (after %dms)", 1, 9092, 0)
    finally:
        logger.removeFilter(repeat_filter)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "FAIL [producer-1]: Connect to 127.0.0.1:9092 failed (after 0ms)",
        "a line of another kind",
        "FAIL [producer-1]: Connect to 127.0.0.1:9092 failed (after 0ms) (and 1199 more like it in the last 31 s)",
    ]


def test_the_kinds_remembered_are_bounded() -> None:
    clock = Clock()
    repeat_filter = RepeatFilter(window_s=30, max_kinds=3, clock=clock)

    def passes(message: str) -> bool:
        return repeat_filter.filter(logging.LogRecord("x", logging.ERROR, __file__, 1, message, None, None))

    assert [passes(m) for m in ("a", "b", "c", "a", "d")] == [True, True, True, False, True]
    assert passes("b")  # forgotten when "d" came: let through again
    assert not passes("a")
