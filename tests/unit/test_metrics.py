"""The gateway's metrics as Prometheus reads them: names, bounded labels, bucket edges, totals."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import GatewayMetrics

ROUTE = "/v2/data/in/{dataset_id}"


def _samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_and_latency_with_prometheus_bucket_edges() -> None:
    m = GatewayMetrics(["example"])
    for seconds in (0.001, 0.0011, 0.3, 20.0):  # on an edge, just above it, mid-range, beyond all
        m.observe_request(ROUTE, "POST", 200, seconds)
    m.observe_request(ROUTE, "POST", 400, 0.002)
    s = _samples(m)

    total = "gateway_http_requests_total"
    assert s[(total, frozenset({("route", ROUTE), ("method", "POST"), ("status", "200")}))] == 4
    assert s[(total, frozenset({("route", ROUTE), ("method", "POST"), ("status", "400")}))] == 1

    def bucket(le: str) -> float:
        return s[("gateway_http_request_duration_seconds_bucket", frozenset({("route", ROUTE), ("le", le)}))]

    assert bucket("0.001") == 1  # "less than or equal"
    assert bucket("0.0025") == 3
    assert bucket("0.25") == 3
    assert bucket("0.5") == 4
    assert bucket("15.0") == 4
    assert bucket("+Inf") == 5
    assert s[("gateway_http_request_duration_seconds_count", frozenset({("route", ROUTE)}))] == 5
    latency_sum = s[("gateway_http_request_duration_seconds_sum", frozenset({("route", ROUTE)}))]
    assert abs(latency_sum - 20.3041) < 1e-9


def test_label_values_stay_bounded() -> None:
    m = GatewayMetrics(["example"])
    for method in ("BREW", "PROPFIND", "X" * 100):
        m.observe_request("unmatched", method, 405, 0.001)
    for dataset in ("nope", "other", "example"):
        m.observe_events(dataset, "accepted", 2)
    s = _samples(m)

    methods = {dict(k[1])["method"] for k in s if k[0] == "gateway_http_requests_total"}
    assert methods == {"OTHER"}
    assert (
        s[
            (
                "gateway_http_requests_total",
                frozenset({("route", "unmatched"), ("method", "OTHER"), ("status", "405")}),
            )
        ]
        == 3
    )
    assert s[("gateway_events_total", frozenset({("dataset", "unknown"), ("outcome", "accepted")}))] == 4
    assert s[("gateway_events_total", frozenset({("dataset", "example"), ("outcome", "accepted")}))] == 2


def test_batch_sizes_and_inflight() -> None:
    m = GatewayMetrics(["example"])
    for count in (1, 100, 100, 10_000, 20_000):
        m.batch_size.observe(count)
    m.inflight = (7, 4096, 250)
    s = _samples(m)

    def bucket(le: str) -> float:
        return s[("gateway_request_events_bucket", frozenset({("le", le)}))]

    assert (bucket("1.0"), bucket("50.0"), bucket("100.0"), bucket("10000.0"), bucket("+Inf")) == (
        1,
        1,
        3,
        4,
        5,
    )
    assert s[("gateway_request_events_sum", frozenset())] == 30_201
    assert s[("gateway_inflight_requests", frozenset())] == 7
    assert s[("gateway_inflight_bytes", frozenset())] == 4096
    assert s[("gateway_inflight_events", frozenset())] == 250
