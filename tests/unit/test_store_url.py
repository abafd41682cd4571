"""STORE_URL: which store, where, and SQLite's one option; mistakes named before anything starts."""

from __future__ import annotations

import re

import pytest

from ingest_core.store import check_store_url
from ingest_core.store.sqlite import sqlite_target


def test_sqlite_paths_and_synchronous() -> None:
    assert sqlite_target("sqlite:///./data/ingest.db") == ("./data/ingest.db", "full")
    assert sqlite_target("sqlite:////var/lib/ingest.db?synchronous=normal") == (
        "/var/lib/ingest.db",
        "normal",
    )
    assert sqlite_target("sqlite:///x.db?synchronous=FULL") == ("x.db", "full")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///x.db?synchronous=off", "STORE_URL: synchronous='off': expected full or normal"),
        ("sqlite:///x.db?cache=big", "STORE_URL: unknown SQLite option 'cache' (known: synchronous)"),
        ("sqlite:///x.db?synchronous", "STORE_URL: malformed SQLite options 'synchronous'"),
        ("sqlite:///x.db?synchronous=", "STORE_URL: synchronous='': expected full or normal"),
        ("sqlite:///", "STORE_URL: sqlite:/// needs a path"),
        ("mysql://db/x", "STORE_URL: use sqlite:///<path> or postgresql://... (got 'mysql://db/x')"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        check_store_url(url)


def test_postgres_urls_pass() -> None:
    check_store_url("postgresql://u:p@db:5432/ingest")
    check_store_url("postgres://db/ingest")
