"""The bench's report: medians over rounds, and the overload line when a status got no requests."""

from __future__ import annotations

from bench.__main__ import Result, median_of, report

OVERLOAD: Result = {
    "offered_connections": 1000.0, "answered_per_s": 5000.0, "shed_share": 0.0, "p99_ms": 9.0,
    "max_ms": 12.0, "ok_p50_ms": 2.0, "ok_p99_ms": 9.0, "ok_max_ms": 12.0, "other_statuses": 0.0,
    "unanswered": 0.0, "steady_rss_mib": 60.0, "overload_rss_mib": 66.0, "rss_ratio": 1.1,
    "acknowledged": 50000.0, "on_kafka": 50000.0, "lost": 0.0,
}  # fmt: skip


def test_a_figure_missing_from_a_round_is_the_median_of_the_rounds_that_have_it() -> None:
    assert median_of([{"a": 1.0, "x": 2.0}, {"a": 3.0}, {"a": 2.0, "x": 4.0}]) == {"a": 2.0, "x": 3.0}


def test_an_overload_with_nothing_shed_says_so_rather_than_zero_milliseconds() -> None:
    text = report({"overload": OVERLOAD}, 1)
    assert "0% shed with 503 (none answered so)" in text
    assert "answered 200 in p50 2.0 ms, p99 9.0 ms, max 12.0 ms" in text
    assert "p99 of the shed" not in text
