"""``ingest-sink`` / ``python -m consumers.sink``: read settings and the registry once, then run."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from consumers.sink.app import FAILED, create_app
from consumers.sink.settings import SinkSettings
from ingest_core.env import SettingsError
from ingest_core.registry import RegistryError, load_registry
from ingest_core.runtime import install_event_loop, running_loop_name, tune_gc
from ingest_core.store import check_store_url


def main() -> int:
    try:
        settings = SinkSettings.from_env(os.environ)
        registry = load_registry(settings.topics_file)
    except (SettingsError, RegistryError) as exc:
        print(f"ingest-sink: {exc}", file=sys.stderr)
        return 2
    try:
        check_store_url(settings.store_url)
    except ValueError as exc:
        print(f"ingest-sink: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_event_loop(settings.event_loop)
    tune_gc()
    app = create_app(settings, registry)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=lambda _m: logging.getLogger("sink").info(
            "listening on http://%s:%d (%s)", settings.host, settings.port, running_loop_name()
        ),
    )
    return 1 if app[FAILED] else 0


if __name__ == "__main__":
    sys.exit(main())
