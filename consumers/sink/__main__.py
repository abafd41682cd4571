"""``ingest-sink`` / ``python -m consumers.sink``: read settings and the registry once, then run."""

from __future__ import annotations

import sys

from consumers.sink.app import create_app
from consumers.sink.settings import SinkSettings
from ingest_core.service import consumer_main


def main() -> int:
    return consumer_main("ingest-sink", SinkSettings.from_env, create_app)


if __name__ == "__main__":
    sys.exit(main())
