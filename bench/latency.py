"""How soon an accepted event is a row: single events posted at a steady, modest rate through the
gateway while the sink runs, then each row's ``persisted_at`` less its ``received_at``.

``received_at`` is the gateway's ``obsrv_meta.syncts``, taken when it built the record (before
Kafka's acknowledgement); ``persisted_at`` is taken by the store as the row's batch is written,
just before its commit. Both clocks are this machine's, at millisecond precision.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import aiohttp

from bench.payloads import body
from tests.support.store import fetch_rows


async def post_paced(url: str, rate: float, seconds: float, msgid_prefix: str) -> int:
    """POST single events one after another at ``rate`` per second; returns how many got 200.

    One at a time, paced by the clock: a modest, steady load, not a saturating one.
    """
    accepted = 0
    count = int(rate * seconds)
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        for i in range(count):
            async with session.post(url, data=body(1, msgid=f"{msgid_prefix}-{i}")) as resp:
                await resp.read()
                accepted += resp.status == 200
            await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
    return accepted


async def row_delays_ms(store_url: str, msgid_prefix: str) -> list[float]:
    """``persisted_at - received_at`` of each row whose msgid starts with the prefix, sorted."""
    delays = []
    for row in await fetch_rows(store_url):
        if not row["msgid"].startswith(msgid_prefix + "-"):
            continue
        received, persisted = row["received_at"], row["persisted_at"]
        if isinstance(received, str):  # SQLite keeps ISO 8601 text with its offset
            received, persisted = datetime.fromisoformat(received), datetime.fromisoformat(persisted)
        delays.append((persisted - received).total_seconds() * 1000)
    return sorted(delays)


def quantile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank quantile of values already sorted."""
    return sorted_values[min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))]
