"""``ingest-gateway`` / ``python -m gateway``: read settings and the registry once, then serve."""

from __future__ import annotations

import logging
import os
import sys

from gateway.serve import configure_logging, serve, supervise
from gateway.settings import GatewaySettings
from ingest_core.env import SettingsError
from ingest_core.registry import RegistryError, load_registry


def main() -> int:
    try:
        settings = GatewaySettings.from_env(os.environ)
        registry = load_registry(settings.topics_file)
    except (SettingsError, RegistryError) as exc:
        print(f"ingest-gateway: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    logging.getLogger("gateway").debug("settings: %s", settings)
    if settings.workers > 1:
        return supervise(settings)
    return serve(settings, registry)


if __name__ == "__main__":
    sys.exit(main())
