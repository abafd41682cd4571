"""The bench's report: medians over rounds, the overload line when a status got no requests, row latency."""

from __future__ import annotations

from bench.__main__ import Result, median_of, report
from bench.latency import quantile

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


def test_row_latency_has_a_line_of_its_own_and_its_max_is_judged_against_a_second() -> None:
    latency: Result = {
        "offered_per_s": 200.0, "accepted": 2000.0, "rows": 1999.0, "p50_ms": 15.0, "p99_ms": 26.0,
        "max_ms": 35.5,
    }  # fmt: skip
    text = report({"latency_sqlite": latency}, 1, [{"latency_sqlite": latency}])
    assert (
        "latency_sqlite: 2,000 single events at 200/s, one at a time, 1,999 rows; each written "
        "p50 15.0 ms, p99 26.0 ms, max 35.5 ms after the gateway took it."
    ) in text
    assert (
        "| row written after the gateway took the event (sqlite), max ms | 35.50 | 35.50 | ≤ 1000 |" in text
    )
    assert "| latency_sqlite |" not in text  # not in the throughput table


def test_quantile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (quantile(values, 0.5), quantile(values, 0.99), quantile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert quantile([7.0], 0.99) == 7.0


def test_the_store_alone_is_reported_as_a_bound_on_the_sinks_ratio() -> None:
    res: dict[str, Result] = {
        "gateway_batch100_c32": {"rps": 2000.0, "events_per_s": 200_000.0},
        "sink_postgres": {"events_per_s": 90_000.0, "rss_mib": 250.0},
        "store_postgres": {"events_per_s": 130_000.0},
        "copy_postgres": {"events_per_s": 150_000.0},
    }
    text = report(res, 1, [res])
    assert (
        "| store_postgres (the store alone: the sink's rows decoded beforehand, no Kafka) | | 130,000 |"
        in text
    )
    assert "| copy_postgres (the server alone: the same rows by COPY, one per core) | | 150,000 |" in text
    assert (
        "| store_postgres rows/s ÷ gateway batch events/s (bound on the sink's ratio) | 0.65 | 0.65 |" in text
    )
    assert (
        "| copy_postgres rows/s ÷ gateway batch events/s (bound on the sink's ratio) | 0.75 | 0.75 |" in text
    )
    assert "| sink postgres events/s ÷ gateway batch events/s | 0.45 | 0.45 | (reference) |" in text
    # The sink's target: its own store's bound.
    assert (
        "| sink postgres events/s ÷ store_postgres rows/s (its store's bound) | 0.69 | 0.69 | ≥ 0.75 |"
        in text
    )
    assert "| store_postgres |" not in text  # not in the throughput table


def test_the_scale_out_run_is_reported_against_one_sink() -> None:
    res: dict[str, Result] = {
        "sink_postgres": {"events_per_s": 100_000.0, "rss_mib": 250.0},
        "scaleout_postgres": {"events_per_s": 130_000.0, "processes": 2.0},
    }
    text = report(res, 1, [res])
    assert "| scaleout_postgres (2 sinks in one group, 6 partitions; persisted) | | 130,000 |" in text
    assert "| 2 sinks in one group (postgres) ÷ one sink, events/s | 1.30 | 1.30 | (reference) |" in text


def test_the_bare_handler_publishing_to_kafka_is_reported_as_a_bound_on_the_single_ratio() -> None:
    res: dict[str, Result] = {
        "bare_aiohttp_c32": {"rps": 20_000.0, "p50_ms": 1.0, "p99_ms": 2.0, "rss_mib": 40.0},
        "bare_publish_c32": {"rps": 12_000.0, "p50_ms": 2.0, "p99_ms": 4.0, "rss_mib": 60.0},
        "gateway_single_c32": {"rps": 10_000.0, "events_per_s": 10_000.0, "p99_ms": 9.0},
    }
    text = report(res, 1, [res])
    assert "| bare_publish_c32 | 12,000 |" in text
    assert (
        "| bare handler publishing to Kafka req/s ÷ bare aiohttp req/s (bound on the single ratio) | 0.60 | 0.60 |"
        in text
    )
    assert "| gateway single req/s ÷ bare handler publishing to Kafka req/s | 0.83 | 0.83 |" in text
    assert "| gateway single req/s ÷ bare aiohttp req/s | 0.50 | 0.50 | ≥ 0.70 |" in text


def test_the_source_import_is_reported_against_the_gateways_batches() -> None:
    res: dict[str, Result] = {
        "gateway_batch100_c32": {"rps": 2000.0, "events_per_s": 200_000.0},
        "source_import1000_c8": {"rps": 120.0, "events_per_s": 120_000.0, "p99_ms": 80.0},
    }
    text = report(res, 1, [res])
    assert "| source_import1000_c8 | 120 | 120,000 |" in text
    assert (
        "| source import entries/s (1,000 a request, c=8) ÷ gateway batch events/s | 0.60 | 0.60 | ≥ 0.50 |"
        in text
    )


def test_the_jsonl_import_is_reported_against_the_gateways_batches_with_its_rss() -> None:
    res: dict[str, Result] = {
        "gateway_batch100_c32": {"rps": 2000.0, "events_per_s": 200_000.0},
        "jsonl_import_1m": {"events_per_s": 110_000.0, "mb_per_s": 300.0, "rss_mib": 105.0},
    }
    text = report(res, 1, [res])
    assert (
        "| JSONL import lines/s (upload done to COMPLETE) ÷ gateway batch events/s | 0.55 | 0.55 | ≥ 0.50 |"
        in text
    )
    assert "| JSONL import worker's largest RSS (MiB) | 105.00 | 105.00 | < 300 |" in text
