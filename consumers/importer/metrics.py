"""The import worker's Prometheus metrics; labels are bounded (outcomes and statuses)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ImporterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.lines = Counter("importer_lines", "Lines of JSONL imports, by outcome", ["outcome"], registry=r)
        self.rows = Counter(
            "importer_rows",
            "Rows of entity file imports (CSV, XLSX) and users of import operations, by outcome",
            ["outcome"],
            registry=r,
        )
        self.jobs = Counter(
            "importer_jobs_finished", "Imports run to their end, by status", ["status"], registry=r
        )
        self.duration = Histogram(
            "importer_job_run_seconds", "How long a job's run took in this worker (resumed: its last run)",
            ["kind"], registry=r, buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
        )  # fmt: skip
        self.running = Gauge("importer_jobs_running", "Imports being run now", registry=r)
        self.retries = Counter(
            "importer_job_retries", "Imports resumed after the store or Kafka failed them", registry=r
        )
