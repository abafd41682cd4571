"""``ingest-gateway`` / ``python -m gateway``: read settings and the registry once, then serve."""

from __future__ import annotations

import sys

from gateway.serve import serve, supervise
from gateway.settings import GatewaySettings
from ingest_core.service import start


def main() -> int:
    settings, registry = start("ingest-gateway", GatewaySettings.from_env)
    if settings.workers > 1:
        return supervise(settings)
    return serve(settings, registry)


if __name__ == "__main__":
    sys.exit(main())
