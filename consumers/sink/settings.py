"""The sink's settings, read from the environment once, in ``__main__``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ingest_core.env import env_choice, env_int, env_str
from ingest_core.kafka import DYNAMIC, Membership, membership_from_env
from ingest_core.runtime import event_loop_from_env


@dataclass(frozen=True, slots=True)
class SinkSettings:
    kafka_bootstrap_servers: str = "127.0.0.1:9092"  # KAFKA_BOOTSTRAP_SERVERS
    topics_file: Path = Path("topics.yaml")  # TOPICS_FILE
    group: str = "ingest-sink"  # SINK_GROUP: consumer group
    store_url: str = "sqlite:///./data/ingest.db"  # STORE_URL: sqlite:///<path> or postgresql://...
    dlq_topic: str = "ingest.dlq"  # DLQ_TOPIC
    host: str = "127.0.0.1"  # SINK_HOST: address of /health, /ready, /metrics
    port: int = 9101  # SINK_PORT
    batch_size: int = 5000  # SINK_BATCH_SIZE: most records per poll and per transaction
    batch_linger_ms: int = 20  # SINK_BATCH_LINGER_MS: how long a batch waits to fill after its first record
    batches_in_flight: int = 8  # SINK_BATCHES_IN_FLIGHT: polled batches being persisted at once
    # SINK_MAX_INFLIGHT_BYTES: no batch is polled while those in flight hold this many bytes of values
    max_inflight_bytes: int = 64 * 1024 * 1024
    max_backoff_ms: int = 5000  # SINK_MAX_BACKOFF_MS: cap of the retry backoff when the store is down
    log_level: str = "info"  # LOG_LEVEL
    log_format: str = "text"  # LOG_FORMAT: text, or json (one object a line)
    event_loop: str = "uvloop"  # EVENT_LOOP: auto (uvloop when installed), uvloop or asyncio; resolved
    # SINK_INSTANCE_ID (static membership) and CONSUMER_SESSION_TIMEOUT_MS
    membership: Membership = DYNAMIC

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SinkSettings:
        """Parse the environment; raises SettingsError naming the variable at fault."""
        d = cls()
        return cls(
            kafka_bootstrap_servers=env_str(env, "KAFKA_BOOTSTRAP_SERVERS", d.kafka_bootstrap_servers),
            topics_file=Path(env_str(env, "TOPICS_FILE", str(d.topics_file))),
            group=env_str(env, "SINK_GROUP", d.group),
            store_url=env_str(env, "STORE_URL", d.store_url),
            dlq_topic=env_str(env, "DLQ_TOPIC", d.dlq_topic),
            host=env_str(env, "SINK_HOST", d.host),
            port=env_int(env, "SINK_PORT", d.port),
            batch_size=env_int(env, "SINK_BATCH_SIZE", d.batch_size, minimum=1),
            batch_linger_ms=env_int(env, "SINK_BATCH_LINGER_MS", d.batch_linger_ms, minimum=0, maximum=5000),
            batches_in_flight=env_int(env, "SINK_BATCHES_IN_FLIGHT", d.batches_in_flight, minimum=1),
            max_inflight_bytes=env_int(env, "SINK_MAX_INFLIGHT_BYTES", d.max_inflight_bytes, minimum=1),
            max_backoff_ms=env_int(env, "SINK_MAX_BACKOFF_MS", d.max_backoff_ms, minimum=10),
            log_level=env_choice(env, "LOG_LEVEL", d.log_level, ("debug", "info", "warning", "error")),
            log_format=env_choice(env, "LOG_FORMAT", d.log_format, ("text", "json")),
            event_loop=event_loop_from_env(env),
            membership=membership_from_env(env, "SINK_INSTANCE_ID"),
        )
