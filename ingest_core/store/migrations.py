"""Versioned schema migrations, one list for every service, written per dialect.

Append only: a released migration is never edited. Each runs once, recorded in ``schema_migrations``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sqlite: str
    postgres: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "records",
        sqlite="""
        CREATE TABLE IF NOT EXISTS records (
            dataset TEXT NOT NULL,
            event_id TEXT NOT NULL,
            msgid TEXT NOT NULL,
            event JSON NOT NULL,
            topic TEXT NOT NULL,
            partition INT NOT NULL,
            "offset" BIGINT NOT NULL,
            received_at TIMESTAMP WITH TIME ZONE NOT NULL,
            persisted_at TIMESTAMP WITH TIME ZONE NOT NULL,
            PRIMARY KEY (dataset, event_id)
        )
        """,
        postgres="""
        CREATE TABLE IF NOT EXISTS records (
            dataset TEXT NOT NULL,
            event_id TEXT NOT NULL,
            msgid TEXT NOT NULL,
            event JSONB NOT NULL,
            topic TEXT NOT NULL,
            partition INT NOT NULL,
            "offset" BIGINT NOT NULL,
            received_at TIMESTAMP WITH TIME ZONE NOT NULL,
            persisted_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
            PRIMARY KEY (dataset, event_id)
        )
        """,
    ),
    Migration(
        2,
        "jobs",
        sqlite="""
        CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            target TEXT,
            principal TEXT NOT NULL,
            progress INT NOT NULL DEFAULT 0,
            total BIGINT NOT NULL DEFAULT 0,
            imported BIGINT NOT NULL DEFAULT 0,
            failed BIGINT NOT NULL DEFAULT 0,
            errors JSON NOT NULL DEFAULT '[]',
            request JSON NOT NULL DEFAULT '{}',
            checkpoint BIGINT NOT NULL DEFAULT 0,
            created_at TIMESTAMP WITH TIME ZONE NOT NULL,
            updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
            started_at TIMESTAMP WITH TIME ZONE,
            ended_at TIMESTAMP WITH TIME ZONE,
            heartbeat_at TIMESTAMP WITH TIME ZONE
        )
        """,
        postgres="""
        CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            target TEXT,
            principal TEXT NOT NULL,
            progress INT NOT NULL DEFAULT 0,
            total BIGINT NOT NULL DEFAULT 0,
            imported BIGINT NOT NULL DEFAULT 0,
            failed BIGINT NOT NULL DEFAULT 0,
            errors JSONB NOT NULL DEFAULT '[]',
            request JSONB NOT NULL DEFAULT '{}',
            checkpoint BIGINT NOT NULL DEFAULT 0,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            started_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            heartbeat_at TIMESTAMPTZ
        )
        """,
    ),
    Migration(
        3,
        "jobs_by_principal",
        # The import operations' "current operation" is its principal's latest of its kind.
        sqlite="CREATE INDEX IF NOT EXISTS jobs_by_principal ON jobs (principal, kind, created_at)",
        postgres="CREATE INDEX IF NOT EXISTS jobs_by_principal ON jobs (principal, kind, created_at)",
    ),
)

LATEST = MIGRATIONS[-1].version
