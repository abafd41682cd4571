"""The docs' tables match the code: every error code the gateway can answer, with its status; every
setting of every program; the records table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.errors import ALL_ERRORS, http_form

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text("utf-8")


def _table_after(heading: str, text: str = README) -> list[list[str]]:
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows or line.startswith("#"):
            break
    return rows[2:]  # header and separator


def test_error_table_matches_the_code() -> None:
    documented = {(row[0].strip("`"), int(row[1]), row[2].strip("`")) for row in _table_after("### Errors")}
    in_code = {(e.code, http_form(e).status, http_form(e).response_code) for e in ALL_ERRORS}
    assert documented == in_code


@pytest.mark.parametrize(
    "settings", ["gateway/settings.py", "consumers/sink/settings.py", "consumers/importer/settings.py"]
)
def test_configuration_table_names_every_setting(settings: str) -> None:
    documented = {row[0].strip("`") for row in _table_after("# Configuration", CONFIGURATION)}
    in_code = set(re.findall(r'env_\w+\(\s*env,\s*"([A-Z_]+)"', (ROOT / settings).read_text("utf-8")))
    assert in_code, f"no settings found: the pattern no longer matches {settings}"
    assert in_code <= documented


def test_records_table_matches_the_migration() -> None:
    from ingest_core.store.migrations import MIGRATIONS

    documented = [row[0].strip("`").strip('"') for row in _table_after("### The `records` table")]
    ddl = MIGRATIONS[0].postgres
    columns = [
        line.split()[0].strip('"') for line in ddl.splitlines()[2:] if line.strip() and "KEY" not in line
    ]
    assert documented == [c for c in columns if c != ")"]
