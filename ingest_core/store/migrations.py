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
)

LATEST = MIGRATIONS[-1].version
