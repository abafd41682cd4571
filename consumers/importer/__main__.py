"""``ingest-importer`` / ``python -m consumers.importer``: read settings and the registry once, then run."""

from __future__ import annotations

import sys

from consumers.importer.app import create_app
from consumers.importer.settings import ImporterSettings
from ingest_core.service import consumer_main


def main() -> int:
    return consumer_main("ingest-importer", ImporterSettings.from_env, create_app)


if __name__ == "__main__":
    sys.exit(main())
