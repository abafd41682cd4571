"""The sink's Prometheus metrics; labels are bounded (reasons, registered topics and partitions)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SinkMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.consumed = Counter("sink_records_consumed", "Records read from the entry topics", registry=r)
        self.persisted = Counter("sink_records_persisted", "Rows newly written to the store", registry=r)
        self.duplicates = Counter(
            "sink_duplicates_ignored", "Records whose event id was already stored", registry=r
        )
        self.dead_lettered = Counter(
            "sink_records_dead_lettered", "Records set aside on the DLQ, by reason", ["reason"], registry=r
        )
        self.batch_seconds = Histogram(
            "sink_batch_duration_seconds", "Time to persist one polled batch, retries included",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "sink_batch_records", "Records per polled batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000), registry=r,
        )  # fmt: skip
        self.store_errors = Counter("sink_store_errors", "Failed store or DLQ writes (retried)", registry=r)
        self.dlq_restarts = Counter(
            "sink_dlq_producer_restarts",
            "Dead-letter producers replaced after librdkafka declared them failed (a fatal error)",
            registry=r,
        )
        self.store_up = Gauge("sink_store_up", "1 when the last store write succeeded", registry=r)
        self.malformed = Counter(
            "sink_http_malformed_requests",
            "Requests to this port that aiohttp could not parse (answered 400 by it)",
            registry=r,
        )
        self.lag = Gauge(
            "sink_consumer_lag", "High watermark minus position", ["topic", "partition"], registry=r
        )
