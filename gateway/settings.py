"""The gateway's settings: read from the environment once, in ``__main__``, and passed explicitly.

These variable names are a public contract (README, Helm chart): add to them, never rename them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ingest_core.blobs import blob_store_url
from ingest_core.env import SettingsError, env_choice, env_float, env_int, env_opt, env_str
from ingest_core.publish import DEFAULT_MAX_RECORD_BYTES
from ingest_core.runtime import event_loop_from_env

MIB = 1024 * 1024
MAX_LINGER_MS = 900_000.0  # librdkafka's own limit: beyond it the producer could not be created
MAX_RECORD_BYTES = 1_000_000_000  # librdkafka's own limit on message.max.bytes
MIN_RECORD_BYTES = 4096  # below it even a small event's record would not fit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies(env: Mapping[str, str]) -> tuple[Network, ...]:
    """TRUSTED_PROXIES: comma-separated addresses or CIDR networks whose X-Forwarded-For is believed."""
    raw = env_opt(env, "TRUSTED_PROXIES") or ""
    out = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(
                f"TRUSTED_PROXIES: {part!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    host: str = "127.0.0.1"  # GATEWAY_HOST
    port: int = 8080  # GATEWAY_PORT
    # METRICS_PORT: serve /metrics on this port only (same host), not with the API; unset: with it
    metrics_port: int | None = None
    kafka_bootstrap_servers: str = "127.0.0.1:9092"  # KAFKA_BOOTSTRAP_SERVERS
    topics_file: Path = Path("topics.yaml")  # TOPICS_FILE
    max_body_bytes: int = 10 * MIB  # MAX_BODY_BYTES: larger bodies get 413
    body_timeout_ms: int = 30_000  # BODY_TIMEOUT_MS: longest wait for a body to arrive, then 408
    delivery_timeout_ms: int = 10_000  # DELIVERY_TIMEOUT_MS: longest wait for Kafka's ack, then 503
    metadata_timeout_ms: int = 3_000  # METADATA_TIMEOUT_MS: longest wait to learn a topic is missing
    max_batch_events: int = 10_000  # MAX_BATCH_EVENTS: events in one request
    max_inflight_requests: int = 4_096  # MAX_INFLIGHT_REQUESTS: beyond it, 503 OVERLOADED at once
    max_inflight_events: int = 500_000  # MAX_INFLIGHT_EVENTS: beyond it, 503 OVERLOADED at once
    max_inflight_bytes: int = 64 * MIB  # MAX_INFLIGHT_BYTES: bodies in progress; beyond, 503 OVERLOADED
    kafka_linger_ms: float = 0.2  # KAFKA_LINGER_MS: producer batching delay, may be fractional
    # KAFKA_BATCH_LINGER_MS: the same for requests of several events (their own producer).
    kafka_batch_linger_ms: float = 5.0
    kafka_compression: str = "lz4"  # KAFKA_COMPRESSION: none, gzip, snappy, lz4, zstd
    # KAFKA_MAX_RECORD_BYTES: the most one event's Kafka record may take (the producers' limit); a
    # request holding a larger one is 413 and publishes nothing.
    kafka_max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    log_level: str = "info"  # LOG_LEVEL
    log_format: str = "text"  # LOG_FORMAT: text, or json (one object a line)
    # ACCESS_LOG: a line per request (request id, route, status, duration); 5xx answers are
    # logged either way
    access_log: bool = False
    # WATCH_CONFIG: reload the registry, its schemas and AUTH_FILE when one changes on disk (they
    # are reloaded on SIGHUP either way)
    watch_config: bool = False
    workers: int = 1  # GATEWAY_WORKERS: processes sharing the port (SO_REUSEPORT)
    # GATEWAY_LISTEN_BACKLOG: connections the kernel holds until accepted (capped by somaxconn).
    # aiohttp's default, 128, overflowed under the bench's burst of 1,000 connections (SYN retries).
    listen_backlog: int = 1024
    # GATEWAY_MAX_CONNECTIONS: client connections open at once, per process; at the limit new ones
    # wait to be accepted. Lowered at start where the descriptor limit (ulimit -n) cannot fit it.
    max_connections: int = 10_000
    # GATEWAY_KEEPALIVE_TIMEOUT_S: an idle connection (none of its requests in progress, or none
    # sent yet) is closed after this long, giving its slot back. aiohttp's own default is 3630 s.
    keepalive_timeout_s: float = 75.0
    publisher: str = "confluent"  # GATEWAY_PUBLISHER: confluent (librdkafka) or aiokafka
    # KAFKA_REPORT_WAKEUP: pipe (librdkafka signals new delivery reports) or timer (polled each ms).
    kafka_report_wakeup: str = "pipe"
    event_loop: str = "uvloop"  # EVENT_LOOP: auto (uvloop when installed), uvloop or asyncio; resolved
    # AUTH_FILE: the principals (schemas/auth.schema.json); unset: the import APIs answer 401.
    auth_file: Path | None = None
    # STORE_URL: where the import APIs keep their jobs (the sink's store).
    store_url: str = "sqlite:///./data/ingest.db"
    upload_dir: Path = Path("data/uploads")  # UPLOAD_DIR: where uploaded files wait for their import
    # BLOB_STORE_URL: s3://bucket/prefix keeps uploads in S3 (endpoint, region and credentials from
    # the AWS_* variables; UPLOAD_DIR is then scratch space); unset, in UPLOAD_DIR
    blob_store_url: str | None = None
    max_upload_bytes: int = 1024 * MIB  # MAX_UPLOAD_BYTES: larger uploads get 413
    # UPLOAD_SIGNING_KEY: signs upload URLs; every gateway of a deployment needs the same one.
    # Unset: a random one made at start (URLs then die with the process), with a warning.
    upload_signing_key: str | None = field(default=None, repr=False)  # never logged
    # PUBLIC_BASE_URL: how clients reach this gateway, for upload URLs (default its own address).
    public_base_url: str | None = None
    jobs_topic: str = "ingest.jobs"  # JOBS_TOPIC: import commands for the import workers
    # TRUSTED_PROXIES: the proxies whose X-Forwarded-For names an anonymous caller's address (for
    # its rate limits); a request from anywhere else is counted under its peer's address
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewaySettings:
        """Parse the environment; raises SettingsError naming the variable at fault."""
        d = cls()
        settings = cls(
            host=env_str(env, "GATEWAY_HOST", d.host),
            port=env_int(env, "GATEWAY_PORT", d.port, minimum=0),
            metrics_port=env_int(env, "METRICS_PORT", 0, minimum=1, maximum=65535)
            if env_opt(env, "METRICS_PORT")
            else None,
            kafka_bootstrap_servers=env_str(env, "KAFKA_BOOTSTRAP_SERVERS", d.kafka_bootstrap_servers),
            topics_file=Path(env_str(env, "TOPICS_FILE", str(d.topics_file))),
            max_body_bytes=env_int(env, "MAX_BODY_BYTES", d.max_body_bytes, minimum=1024),
            body_timeout_ms=env_int(env, "BODY_TIMEOUT_MS", d.body_timeout_ms, minimum=100),
            delivery_timeout_ms=env_int(env, "DELIVERY_TIMEOUT_MS", d.delivery_timeout_ms, minimum=100),
            metadata_timeout_ms=env_int(env, "METADATA_TIMEOUT_MS", d.metadata_timeout_ms, minimum=100),
            max_batch_events=env_int(env, "MAX_BATCH_EVENTS", d.max_batch_events, minimum=1),
            max_inflight_requests=env_int(env, "MAX_INFLIGHT_REQUESTS", d.max_inflight_requests, minimum=1),
            max_inflight_events=env_int(env, "MAX_INFLIGHT_EVENTS", d.max_inflight_events, minimum=1000),
            max_inflight_bytes=env_int(env, "MAX_INFLIGHT_BYTES", d.max_inflight_bytes, minimum=1024),
            kafka_linger_ms=env_float(env, "KAFKA_LINGER_MS", d.kafka_linger_ms, maximum=MAX_LINGER_MS),
            kafka_batch_linger_ms=env_float(
                env, "KAFKA_BATCH_LINGER_MS", d.kafka_batch_linger_ms, maximum=MAX_LINGER_MS
            ),
            kafka_compression=env_choice(
                env, "KAFKA_COMPRESSION", d.kafka_compression, ("none", "gzip", "snappy", "lz4", "zstd")
            ),
            kafka_max_record_bytes=env_int(
                env, "KAFKA_MAX_RECORD_BYTES", d.kafka_max_record_bytes, minimum=MIN_RECORD_BYTES
            ),
            log_level=env_choice(env, "LOG_LEVEL", d.log_level, ("debug", "info", "warning", "error")),
            access_log=env_choice(env, "ACCESS_LOG", "false", ("true", "false")) == "true",
            watch_config=env_choice(env, "WATCH_CONFIG", "false", ("true", "false")) == "true",
            log_format=env_choice(env, "LOG_FORMAT", d.log_format, ("text", "json")),
            workers=env_int(env, "GATEWAY_WORKERS", d.workers, minimum=1),
            listen_backlog=env_int(env, "GATEWAY_LISTEN_BACKLOG", d.listen_backlog, minimum=1),
            max_connections=env_int(env, "GATEWAY_MAX_CONNECTIONS", d.max_connections, minimum=1),
            keepalive_timeout_s=env_float(
                env, "GATEWAY_KEEPALIVE_TIMEOUT_S", d.keepalive_timeout_s, minimum=1.0, maximum=86_400.0
            ),
            publisher=env_choice(env, "GATEWAY_PUBLISHER", d.publisher, ("confluent", "aiokafka")),
            kafka_report_wakeup=env_choice(
                env, "KAFKA_REPORT_WAKEUP", d.kafka_report_wakeup, ("pipe", "timer")
            ),
            event_loop=event_loop_from_env(env),
            auth_file=Path(auth) if (auth := env_opt(env, "AUTH_FILE")) else None,
            store_url=env_str(env, "STORE_URL", d.store_url),
            upload_dir=Path(env_str(env, "UPLOAD_DIR", str(d.upload_dir))),
            blob_store_url=blob_store_url(env),
            max_upload_bytes=env_int(env, "MAX_UPLOAD_BYTES", d.max_upload_bytes, minimum=1),
            upload_signing_key=env_opt(env, "UPLOAD_SIGNING_KEY"),
            public_base_url=env_opt(env, "PUBLIC_BASE_URL"),
            jobs_topic=env_str(env, "JOBS_TOPIC", d.jobs_topic),
            trusted_proxies=trusted_proxies(env),
        )
        if settings.kafka_max_record_bytes > MAX_RECORD_BYTES:
            raise SettingsError(
                f"KAFKA_MAX_RECORD_BYTES={settings.kafka_max_record_bytes}: librdkafka takes at most "
                f"{MAX_RECORD_BYTES}"
            )
        # A request as large as allowed must fit within the in-flight bounds, or it could only
        # ever be answered 503 "retry".
        if settings.max_body_bytes > settings.max_inflight_bytes:
            raise SettingsError(
                f"MAX_BODY_BYTES={settings.max_body_bytes} exceeds MAX_INFLIGHT_BYTES="
                f"{settings.max_inflight_bytes}: a body that large could never be taken on"
            )
        if settings.max_batch_events > settings.max_inflight_events:
            raise SettingsError(
                f"MAX_BATCH_EVENTS={settings.max_batch_events} exceeds MAX_INFLIGHT_EVENTS="
                f"{settings.max_inflight_events}: a batch that large could never be taken on"
            )
        if settings.metrics_port is not None and settings.metrics_port == settings.port:
            raise SettingsError(f"METRICS_PORT={settings.metrics_port} is GATEWAY_PORT too: give another")
        return settings
