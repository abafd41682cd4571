"""The README's tables match the code: every error code the gateway can answer, with its status."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.errors import ALL_ERRORS, http_form

README = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")


def _table_after(heading: str) -> list[list[str]]:
    section = README.split(heading, 1)[1]
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


def test_configuration_table_names_every_gateway_setting() -> None:
    documented = {row[0].strip("`") for row in _table_after("## Configuration")}
    source = (Path(__file__).resolve().parents[2] / "gateway" / "settings.py").read_text("utf-8")
    in_code = set(re.findall(r'env_\w+\(\s*env,\s*"([A-Z_]+)"', source))
    assert in_code, "no settings found: the pattern no longer matches settings.py"
    assert in_code <= documented


def test_configuration_table_names_every_sink_setting() -> None:
    documented = {row[0].strip("`") for row in _table_after("## Configuration")}
    source = (Path(__file__).resolve().parents[2] / "consumers" / "sink" / "settings.py").read_text("utf-8")
    in_code = set(re.findall(r'env_\w+\(\s*env,\s*"([A-Z_]+)"', source))
    assert in_code
    assert in_code <= documented


def test_records_table_matches_the_migration() -> None:
    from ingest_core.store.migrations import MIGRATIONS

    documented = [row[0].strip("`").strip('"') for row in _table_after("### The `records` table")]
    ddl = MIGRATIONS[0].postgres
    columns = [
        line.split()[0].strip('"') for line in ddl.splitlines()[2:] if line.strip() and "KEY" not in line
    ]
    assert documented == [c for c in columns if c != ")"]
