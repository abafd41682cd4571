"""The Python client's throughput: ``python -m bench.client_load URL EVENTS`` sends EVENTS small
events to the dataset ``example`` with ``AsyncIngestClient``'s defaults and prints one JSON line:
events acknowledged per second (from the first send to the last acknowledgement), failures,
retries and the process's peak RSS."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

from ingest_client import AsyncIngestClient


async def run(url: str, events: int) -> dict[str, float]:
    started = time.perf_counter()
    async with AsyncIngestClient(url) as client:
        for n in range(events):
            await client.send("example", {"eid": "INTERACT", "n": n, "ets": 1711966306164, "ver": "3.0"})
    seconds = time.perf_counter() - started
    return {
        "events_per_s": client.counters.sent / seconds,
        "failed": client.counters.failed,
        "retried": client.counters.retried,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    url, events = sys.argv[1], int(sys.argv[2])
    print(json.dumps(asyncio.run(run(url, events))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
