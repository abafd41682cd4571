"""The bench's reading of h2load: latency per status from its request log, and unanswered requests."""

from __future__ import annotations

from bench.h2load import StatusLatency, _unanswered, parse_log


def test_latency_per_status_and_overall() -> None:
    # start (µs since the epoch), status, elapsed (µs): 100 accepted at 10..1000 ms, 3 shed fast
    rows = [f"{1_000_000 + i}\t200\t{(i + 1) * 10_000}" for i in range(100)]
    rows += ["1000500\t503\t300", "1000600\t503\t500", "1000700\t503\t2000"]
    span, overall, by_status = parse_log("\n".join(rows) + "\n")
    assert span == 1.000099  # first start to last end
    assert by_status[200] == StatusLatency(100, 510.0, 1000.0, 1000.0)
    assert by_status[503] == StatusLatency(3, 0.5, 2.0, 2.0)
    assert (overall.count, overall.max_ms) == (103, 1000.0)


def test_unanswered_are_errored_and_timed_out_not_5xx() -> None:
    out = (
        "finished in 10.06s, 8859.30 req/s, 3.68MB/s\n"
        "requests: 88593 total, 89593 started, 88593 done, 38005 succeeded, 50588 failed, 2 errored, 1 timeout\n"
    )
    assert _unanswered(out) == 3
