"""``ingest-topics``: check the registry, or create its missing topics on the cluster.

ingest-topics check    validate TOPICS_FILE and print its datasets
ingest-topics apply    create every missing topic the registry names (idempotent; never deletes)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ingest_core.env import SettingsError, env_int, env_str
from ingest_core.kafka import (
    KafkaAdminError,
    TopicSpec,
    client_config_from_env,
    configure_clients,
    ensure_topics,
)
from ingest_core.registry import Registry, RegistryError, load_registry

# A dead letter is its record with headers added (at most ~1.3 KB of them), so the dead-letter topic
# must take larger records than the entry topics: these take the broker's default (message.max.bytes,
# 1 MiB unless the operator changed it). At the same limit, a bad record close to it could never be
# dead-lettered, and its batch would never be committed.
DLQ_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def dlq_topic_spec(name: str) -> TopicSpec:
    """The dead-letter topic: one partition, records up to DLQ_MAX_MESSAGE_BYTES."""
    return TopicSpec(name, 1, config=(("max.message.bytes", str(DLQ_MAX_MESSAGE_BYTES)),))


JOBS_PARTITIONS = 3


def topic_specs(
    registry: Registry, dlq_topic: str | None = None, jobs_topic: str | None = None
) -> list[TopicSpec]:
    """Every topic the system needs: each dataset's, source's and type's, the dead-letter topic and
    the import commands' topic."""
    specs = [
        TopicSpec(
            d.entry_topic,
            d.partitions,
            d.replication_factor,
            () if d.min_insync_replicas is None else (("min.insync.replicas", str(d.min_insync_replicas)),),
        )
        for d in registry.records.values()
        if d.entry_topic
    ]
    if dlq_topic:
        specs.append(dlq_topic_spec(dlq_topic))
    if jobs_topic:
        specs.append(TopicSpec(jobs_topic, JOBS_PARTITIONS))
    return specs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ingest-topics", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "apply"])
    args = parser.parse_args(argv)
    env = os.environ
    try:
        configure_clients(client_config_from_env(env))
        registry = load_registry(Path(env_str(env, "TOPICS_FILE", "topics.yaml")))
        timeout_ms = env_int(env, "ADMIN_TIMEOUT_MS", 30000, minimum=1)
    except (RegistryError, SettingsError) as exc:
        print(f"ingest-topics: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        for kind, targets in (
            ("dataset", registry.datasets),
            ("source", registry.sources),
            ("type", registry.types),
            ("entity", {name: entity.target for name, entity in registry.entities.items()}),
        ):
            for d in targets.values():
                print(f"{kind}\t{d.id}\t{d.entry_topic or '-'}\tpartitions={d.partitions}\tbatch={d.batch}")
        return 0
    bootstrap = env_str(env, "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    try:
        created = ensure_topics(
            bootstrap,
            topic_specs(
                registry, env_str(env, "DLQ_TOPIC", "ingest.dlq"), env_str(env, "JOBS_TOPIC", "ingest.jobs")
            ),
            timeout_ms / 1000,
        )
    except KafkaAdminError as exc:
        print(f"ingest-topics: {exc}", file=sys.stderr)
        return 1
    print(f"ingest-topics: {len(created)} created" + (f": {', '.join(created)}" if created else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
