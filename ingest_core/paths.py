"""Where the project's data files (JSON Schemas) live."""

from __future__ import annotations

import os
from pathlib import Path

# The schemas are data shipped beside the packages (an editable install or the container image
# keeps the tree); SCHEMAS_DIR points elsewhere when they are installed apart.
SCHEMAS_DIR = Path(os.environ.get("SCHEMAS_DIR") or Path(__file__).resolve().parent.parent / "schemas")


def schema_path(name: str) -> Path:
    return SCHEMAS_DIR / name
