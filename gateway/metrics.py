"""The gateway's Prometheus metrics, on its own registry, with bounded label values only.

Labels are route templates (never raw paths), a fixed set of methods, status codes, and registered
dataset ids (anything else is ``unknown``).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class GatewayMetrics:
    def __init__(self, datasets: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._datasets = frozenset(datasets)
        self.requests = Counter(
            "gateway_http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "gateway_http_request_duration_seconds", "HTTP request latency by route template",
            ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.events = Counter(
            "gateway_events", "Events by dataset and outcome (accepted: acknowledged by Kafka)",
            ["dataset", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "gateway_request_events", "Events per accepted request",
            buckets=_BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.inflight = Gauge(
            "gateway_inflight_requests", "Ingestion requests in flight", registry=self.registry
        )

        # Labelled children, looked up once: ``labels()`` costs microseconds per call on the hot path.
        # Bounded: routes, methods and statuses are finite sets, datasets come from the registry.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._event_children: dict[tuple[str, str], Counter] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            label = method if method in _METHODS else "OTHER"
            children = (self.requests.labels(route, label, str(status)), self.latency.labels(route))
            if method in _METHODS:
                self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_events(self, dataset: str, outcome: str, count: int) -> None:
        key = (dataset, outcome)
        child = self._event_children.get(key)
        if child is None:
            label = dataset if dataset in self._datasets else "unknown"
            child = self.events.labels(label, outcome)
            if label != "unknown":
                self._event_children[key] = child
        child.inc(count)
