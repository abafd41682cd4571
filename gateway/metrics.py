"""The gateway's Prometheus metrics, on its own registry, with bounded label values only.

Labels are route templates (never raw paths), a fixed set of methods, status codes, and registered
dataset ids (anything else is ``unknown``).

Counted in plain Python numbers and turned into metric families only when scraped: every request
updates three of them, and prometheus_client's Counter and Histogram (a lock and a value object per
sample) cost three times as much (bench/NOTES.md). Everything is
updated and read on the event loop's thread, so nothing needs a lock; each worker process
(``GATEWAY_WORKERS``) has its own.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
# How prometheus_client writes a bucket's bound (untyped there).
_bound_text: Callable[[float], str] = floatToGoString


class Histogram:
    """Observations counted per bucket (not cumulated: cumulated at scrape), and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf's own
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # The first bound >= value: Prometheus buckets are "less than or equal".
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulated, labelled as prometheus_client labels them (``le="1.0"``, ``le="+Inf"``)."""
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append((_bound_text(bound), float(total)))
        return out


@dataclass(slots=True)
class ConfigState:
    """The configuration's reloads (``gateway.reload``)."""

    generation: int = 1  # 1: the configuration read at start
    load_seconds: float = 0.0  # how long the last good load took
    failures: int = 0  # reloads refused


class _RequestCell:
    """The request count of one (route, method, status) and its route's latency histogram."""

    __slots__ = ("count", "latency")

    def __init__(self, latency: Histogram) -> None:
        self.count = 0
        self.latency = latency


class ConnectionCounts(Protocol):
    """What the listener knows of client connections (``gateway.listener.Listener``)."""

    accepted: int
    limit_reached: int

    @property
    def open(self) -> int: ...


class GatewayMetrics(Collector):
    def __init__(self, datasets: Iterable[str]) -> None:
        self._datasets = frozenset(datasets)
        # Bounded: routes, methods and statuses are finite sets, datasets come from the registry.
        self._requests: dict[tuple[str, str, int], _RequestCell] = {}
        self._latency: dict[str, Histogram] = {}
        self._events: dict[tuple[str, str], list[int]] = {}
        self.batch_size = Histogram(_BATCH_BUCKETS)
        # From handing a request's records to the producer to Kafka's acknowledgement of them all.
        self.kafka_ack = Histogram(_LATENCY_BUCKETS)
        # Requests, bytes of their bodies and events in flight: set by whoever renders the metrics.
        self.inflight = (0, 0, 0)
        self.connections: ConnectionCounts | None = None  # set once listening
        self.malformed_requests = 0  # answered by aiohttp itself: see gateway.malformed
        self.producer_restarts = 0  # the publisher's: set by whoever renders the metrics
        self.config = ConfigState()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        cell = self._requests.get((route, method, status))
        if cell is None:
            cell = self._request_cell(route, method, status)
        cell.count += 1
        cell.latency.observe(seconds)

    def _request_cell(self, route: str, method: str, status: int) -> _RequestCell:
        label = method if method in _METHODS else "OTHER"
        key = (route, label, status)
        cell = self._requests.get(key)
        if cell is None:
            latency = self._latency.get(route)
            if latency is None:
                latency = self._latency[route] = Histogram(_LATENCY_BUCKETS)
            cell = self._requests[key] = _RequestCell(latency)
        return cell

    def set_datasets(self, datasets: Iterable[str]) -> None:
        """The dataset ids labels may name (a reloaded registry's)."""
        self._datasets = frozenset(datasets)

    def count_malformed(self) -> None:
        self.malformed_requests += 1

    def observe_events(self, dataset: str, outcome: str, count: int) -> None:
        cell = self._events.get((dataset, outcome))
        if cell is None:
            label = dataset if dataset in self._datasets else "unknown"
            cell = self._events.setdefault((label, outcome), [0])
        cell[0] += count

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gateway_http_requests", "HTTP requests by route template, method and status",
            labels=["route", "method", "status"],
        )  # fmt: skip
        for (route, method, status), cell in sorted(self._requests.items()):
            requests.add_metric([route, method, str(status)], cell.count)
        yield requests
        latency = HistogramMetricFamily(
            "gateway_http_request_duration_seconds", "HTTP request latency by route template",
            labels=["route"],
        )  # fmt: skip
        for route, histogram in sorted(self._latency.items()):
            latency.add_metric([route], histogram.buckets(), histogram.sum)
        yield latency
        events = CounterMetricFamily(
            "gateway_events", "Events by dataset and outcome (accepted: acknowledged by Kafka)",
            labels=["dataset", "outcome"],
        )  # fmt: skip
        for (dataset, outcome), total in sorted(self._events.items()):
            events.add_metric([dataset, outcome], total[0])
        yield events
        batch = HistogramMetricFamily("gateway_request_events", "Events per accepted request")
        batch.add_metric([], self.batch_size.buckets(), self.batch_size.sum)
        yield batch
        ack = HistogramMetricFamily(
            "gateway_kafka_ack_seconds",
            "From a request's records handed to the producer to Kafka's ack of them all",
        )
        ack.add_metric([], self.kafka_ack.buckets(), self.kafka_ack.sum)
        yield ack
        for name, what, value in zip(
            ("gateway_inflight_requests", "gateway_inflight_bytes", "gateway_inflight_events"),
            (
                "Ingestion requests",
                "Bytes of the bodies of ingestion requests",
                "Events of ingestion requests",
            ),
            self.inflight,
            strict=True,
        ):
            yield GaugeMetricFamily(name, f"{what} in flight", value=value)
        yield CounterMetricFamily(
            "gateway_malformed_requests",
            "Requests that could not be parsed as HTTP, answered 400 by the HTTP server before any route",
            value=self.malformed_requests,
        )
        yield CounterMetricFamily(
            "gateway_kafka_producer_restarts",
            "Kafka producers replaced after the client declared them failed for good (a fatal error)",
            value=self.producer_restarts,
        )
        config = self.config
        yield GaugeMetricFamily(
            "gateway_config_generation",
            "Configuration loaded: 1 at start, one more per reload",
            value=config.generation,
        )
        yield GaugeMetricFamily(
            "gateway_config_load_seconds",
            "How long the last configuration load took",
            value=config.load_seconds,
        )
        yield CounterMetricFamily(
            "gateway_config_reload_failures",
            "Reloads refused (the old configuration kept)",
            value=config.failures,
        )
        c = self.connections
        if c is not None:
            yield GaugeMetricFamily("gateway_connections_open", "Client connections open", value=c.open)
            yield CounterMetricFamily(
                "gateway_connections_accepted", "Client connections accepted", value=c.accepted
            )
            yield CounterMetricFamily(
                "gateway_connection_limit_reached",
                "Times GATEWAY_MAX_CONNECTIONS connections were open and new ones had to wait",
                value=c.limit_reached,
            )
