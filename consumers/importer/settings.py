"""The import worker's settings, read from the environment once, in ``__main__``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ingest_core.blobs import blob_store_url
from ingest_core.env import env_choice, env_int, env_str
from ingest_core.jsonl import DEFAULT_MAX_LINE_BYTES
from ingest_core.kafka import DYNAMIC, Membership, membership_from_env
from ingest_core.runtime import event_loop_from_env
from ingest_core.tabular import XLSX_IN_MEMORY_MAX_BYTES


@dataclass(frozen=True, slots=True)
class ImporterSettings:
    kafka_bootstrap_servers: str = "127.0.0.1:9092"  # KAFKA_BOOTSTRAP_SERVERS
    topics_file: Path = Path("topics.yaml")  # TOPICS_FILE
    store_url: str = "sqlite:///./data/ingest.db"  # STORE_URL: where the jobs are
    jobs_topic: str = "ingest.jobs"  # JOBS_TOPIC
    group: str = "ingest-imports"  # IMPORTER_GROUP: consumer group of the import workers
    host: str = "127.0.0.1"  # IMPORTER_HOST: address of /health, /ready, /metrics
    port: int = 9102  # IMPORTER_PORT
    upload_dir: Path = Path("data/uploads")  # UPLOAD_DIR: where the uploaded files are
    # BLOB_STORE_URL: s3://bucket/prefix keeps uploads in S3 (endpoint, region and credentials from
    # the AWS_* variables; UPLOAD_DIR is then scratch space); unset, in UPLOAD_DIR
    blob_store_url: str | None = None
    keep_uploads: bool = False  # KEEP_UPLOADS: keep a finished import's file
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # MAX_LINE_BYTES: longer lines are refused
    # XLSX_IN_MEMORY_MAX_BYTES: workbooks with at most this much sheet XML are read by the faster
    # reader, which holds the sheet in memory; larger ones are streamed (0: always streamed)
    xlsx_in_memory_max_bytes: int = XLSX_IN_MEMORY_MAX_BYTES
    delivery_timeout_ms: int = 10_000  # DELIVERY_TIMEOUT_MS: longest wait for Kafka's ack
    max_backoff_ms: int = 5000  # IMPORTER_MAX_BACKOFF_MS: cap of the retry backoff in an outage
    log_level: str = "info"  # LOG_LEVEL
    log_format: str = "text"  # LOG_FORMAT: text, or json (one object a line)
    event_loop: str = "uvloop"  # EVENT_LOOP
    # IMPORTER_INSTANCE_ID (static membership) and CONSUMER_SESSION_TIMEOUT_MS
    membership: Membership = DYNAMIC

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ImporterSettings:
        """Parse the environment; raises SettingsError naming the variable at fault."""
        d = cls()
        return cls(
            kafka_bootstrap_servers=env_str(env, "KAFKA_BOOTSTRAP_SERVERS", d.kafka_bootstrap_servers),
            topics_file=Path(env_str(env, "TOPICS_FILE", str(d.topics_file))),
            store_url=env_str(env, "STORE_URL", d.store_url),
            jobs_topic=env_str(env, "JOBS_TOPIC", d.jobs_topic),
            group=env_str(env, "IMPORTER_GROUP", d.group),
            host=env_str(env, "IMPORTER_HOST", d.host),
            port=env_int(env, "IMPORTER_PORT", d.port),
            upload_dir=Path(env_str(env, "UPLOAD_DIR", str(d.upload_dir))),
            blob_store_url=blob_store_url(env),
            keep_uploads=env_choice(env, "KEEP_UPLOADS", "false", ("true", "false")) == "true",
            max_line_bytes=env_int(env, "MAX_LINE_BYTES", d.max_line_bytes, minimum=64),
            xlsx_in_memory_max_bytes=env_int(
                env, "XLSX_IN_MEMORY_MAX_BYTES", d.xlsx_in_memory_max_bytes, minimum=0
            ),
            delivery_timeout_ms=env_int(env, "DELIVERY_TIMEOUT_MS", d.delivery_timeout_ms, minimum=100),
            max_backoff_ms=env_int(env, "IMPORTER_MAX_BACKOFF_MS", d.max_backoff_ms, minimum=10),
            log_level=env_choice(env, "LOG_LEVEL", d.log_level, ("debug", "info", "warning", "error")),
            log_format=env_choice(env, "LOG_FORMAT", d.log_format, ("text", "json")),
            event_loop=event_loop_from_env(env),
            membership=membership_from_env(env, "IMPORTER_INSTANCE_ID"),
        )
