"""``ingest-importer`` / ``python -m consumers.importer``: read settings and the registry once, then run."""

from __future__ import annotations

import sys

from consumers.importer.app import FAILED, create_app
from consumers.importer.settings import ImporterSettings
from ingest_core.service import listen_tcp, run, serve_app, start
from ingest_core.store import check_store_url

PROGRAM = "ingest-importer"


def main() -> int:
    settings, registry = start(PROGRAM, ImporterSettings.from_env, lambda s: check_store_url(s.store_url))
    app = create_app(settings, registry)
    status = run(
        PROGRAM, lambda: serve_app(app, listen_tcp(settings.host, settings.port)), settings.event_loop
    )
    return 1 if app[FAILED] else status


if __name__ == "__main__":
    sys.exit(main())
