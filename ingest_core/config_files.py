"""The project's YAML files read at start (the registry, the principals): read, parsed and checked
against their JSON Schema, every failure a message naming the file and the key at fault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import best_match

from ingest_core.paths import schema_path
from ingest_core.validation import instance_path


def read_yaml(path: Path, what: str, error: type[ValueError]) -> Any:
    """The parsed document of ``path`` (``what`` names it in messages); raises ``error``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def check_document(doc: Any, schema_name: str, source: Path, error: type[ValueError]) -> None:
    """Raises ``error`` naming the key at fault when ``doc`` does not match ``schemas/<schema_name>``."""
    meta = json.loads(schema_path(schema_name).read_text(encoding="utf-8"))
    found = best_match(jsonschema.Draft7Validator(meta).iter_errors(doc))
    if found is not None:
        where = instance_path(found.absolute_path) or "(top level)"
        raise error(f"{source}: {where}: {found.message}")
