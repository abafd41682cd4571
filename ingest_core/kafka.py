"""Kafka helpers shared by the programs: client configuration and idempotent topic creation.

Functions here are synchronous (librdkafka's admin API); call them from a thread in async code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported from cimpl, not in its __all__

from ingest_core.env import SettingsError, env_int, env_opt

log = logging.getLogger(__name__)


PREFIX = "LIBRDKAFKA_"
# Set by the programs themselves: a deployment may not change what the guarantees rest on.
_OURS = frozenset(
    {"bootstrap.servers", "client.id", "group.id", "acks", "enable.idempotence", "enable.auto.commit",
     "enable.auto.offset.store", "transactional.id", "group.instance.id", "session.timeout.ms"}
)  # fmt: skip
_client_config: dict[str, str] = {}


def client_config_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """librdkafka properties passed through as ``LIBRDKAFKA_<PROPERTY>`` variables, the property's
    dots written as underscores (``LIBRDKAFKA_SECURITY_PROTOCOL=SASL_SSL``,
    ``LIBRDKAFKA_SASL_USERNAME``, ``LIBRDKAFKA_SSL_CA_LOCATION``...): SASL, TLS and the like, for
    every Kafka client of the program. Raises SettingsError for a property the programs set."""
    out = {
        name[len(PREFIX) :].lower().replace("_", "."): value
        for name, value in env.items()
        if name.startswith(PREFIX)
    }
    refused = sorted(set(out) & _OURS)
    if refused:
        names = ", ".join(PREFIX + p.upper().replace(".", "_") for p in refused)
        raise SettingsError(f"{names}: set by the programs themselves (the delivery guarantees rest on them)")
    return out


def configure_clients(config: Mapping[str, str]) -> None:
    """The passed-through properties every client of this process is made with (once, at start)."""
    _client_config.clear()
    _client_config.update(config)


def client_settings(own: dict[str, Any]) -> dict[str, Any]:
    """A client's configuration: its own settings and the passed-through properties."""
    return {**own, **_client_config}


def passed_through() -> Mapping[str, str]:
    return _client_config


# The broker's group.min.session.timeout.ms and group.max.session.timeout.ms defaults.
MIN_SESSION_TIMEOUT_MS, MAX_SESSION_TIMEOUT_MS = 6_000, 1_800_000
SESSION_TIMEOUT_MS = 10_000  # a dead member's partitions wait this long (librdkafka's: 45 s)


@dataclass(frozen=True, slots=True)
class Membership:
    """How a consumer belongs to its group. ``instance_id`` (static membership): a member that
    comes back under the same id within ``session_timeout_ms`` gets its partitions back at once,
    with no rebalance; a member that is gone for good is replaced once that timeout has passed
    (a static member does not leave the group when it stops, so this also bounds a scale-down)."""

    instance_id: str | None = None
    session_timeout_ms: int = SESSION_TIMEOUT_MS

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"session.timeout.ms": self.session_timeout_ms}
        if self.instance_id is not None:
            out["group.instance.id"] = self.instance_id
        return out


DYNAMIC = Membership()


def membership_from_env(env: Mapping[str, str], instance_variable: str) -> Membership:
    """``instance_variable`` (``SINK_INSTANCE_ID``, ``IMPORTER_INSTANCE_ID``) and
    ``CONSUMER_SESSION_TIMEOUT_MS``; raises SettingsError."""
    return Membership(
        instance_id=env_opt(env, instance_variable),
        session_timeout_ms=env_int(
            env, "CONSUMER_SESSION_TIMEOUT_MS", SESSION_TIMEOUT_MS,
            minimum=MIN_SESSION_TIMEOUT_MS, maximum=MAX_SESSION_TIMEOUT_MS,
        ),
    )  # fmt: skip


class KafkaAdminError(RuntimeError):
    """The cluster could not be reached or refused an admin request."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int | None = None  # None: the broker's default.replication.factor
    config: tuple[tuple[str, str], ...] = ()  # topic configs set at creation (never altered later)


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient(client_settings({"bootstrap.servers": bootstrap, "client.id": "ingest-admin"}))


def existing_topics(admin: AdminClient, timeout_s: float) -> set[str]:
    """Names of the topics on the cluster; raises KafkaAdminError when it does not answer in time."""
    try:
        meta = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaAdminError(f"Kafka did not answer a metadata request: {exc}") from None
    return set(meta.topics)


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; never deletes or alters one. Returns those created.

    Raises KafkaAdminError when the cluster cannot be reached or refuses a creation.
    """
    wanted = {s.name: s for s in specs}
    if not wanted:
        return []
    # One client for the whole call: librdkafka fails pending futures when its handle is freed.
    admin = admin_client(bootstrap)
    present = existing_topics(admin, timeout_s)
    missing = [s for name, s in wanted.items() if name not in present]
    if not missing:
        return []
    new = [NewTopic(s.name, s.partitions, s.replication_factor or -1, config=dict(s.config)) for s in missing]
    futures = admin.create_topics(new, request_timeout=timeout_s)
    created: list[str] = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            # Another process may have created it between our look and our request.
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise KafkaAdminError(f"could not create topic {name!r}: {exc}") from None
    if created:
        log.info("created topics: %s", ", ".join(created))
    return created
