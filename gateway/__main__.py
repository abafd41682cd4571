"""``ingest-gateway`` / ``python -m gateway``: read settings and the registry once, then serve."""

from __future__ import annotations

import logging
import secrets
import sys
from dataclasses import replace

from gateway.serve import serve, supervise
from gateway.settings import GatewaySettings
from ingest_core.auth import load_principals
from ingest_core.kafka import passed_through
from ingest_core.service import start
from ingest_core.store import check_store_url


def _check(settings: GatewaySettings) -> None:
    # The principals file is checked at start like the registry: a bad one stops the program.
    load_principals(settings.auth_file)
    check_store_url(settings.store_url)
    if settings.publisher == "aiokafka" and passed_through():
        raise ValueError("LIBRDKAFKA_* settings are librdkafka's: they need GATEWAY_PUBLISHER=confluent")


def main() -> int:
    settings, registry = start("ingest-gateway", GatewaySettings.from_env, _check)
    if settings.upload_signing_key is None:
        # Made here, before any worker starts, so that every worker signs and checks with it.
        logging.getLogger("gateway").warning(
            "UPLOAD_SIGNING_KEY is not set: upload URLs are signed with a key made now, valid until exit"
        )
        settings = replace(settings, upload_signing_key=secrets.token_urlsafe(32))
    if settings.workers > 1:
        return supervise(settings)
    return serve(settings, registry)


if __name__ == "__main__":
    sys.exit(main())
