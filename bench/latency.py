"""How soon an accepted event is a row: single events posted at a steady, modest rate through the
gateway while the sink runs, then each row's ``persisted_at`` less its ``received_at``.

``received_at`` is the gateway's ``obsrv_meta.syncts``, taken when it built the record (before
Kafka's acknowledgement); ``persisted_at`` is taken by the store as the row's batch is written,
just before its commit. Both clocks are this machine's, at millisecond precision.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime

import aiohttp
import asyncpg

from bench.payloads import body


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
    pattern = msgid_prefix + "-%"
    if store_url.startswith("sqlite:///"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///").split("?", 1)[0]) as con:
            pairs = [
                (datetime.fromisoformat(r), datetime.fromisoformat(p))
                for r, p in con.execute(
                    "SELECT received_at, persisted_at FROM records WHERE msgid LIKE ?", (pattern,)
                )
            ]
    else:
        conn = await asyncpg.connect(store_url)
        try:
            rows = await conn.fetch(
                "SELECT received_at, persisted_at FROM records WHERE msgid LIKE $1", pattern
            )
        finally:
            await conn.close()
        pairs = [(r["received_at"], r["persisted_at"]) for r in rows]
    return sorted((p - r).total_seconds() * 1000 for r, p in pairs)


def quantile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank quantile of values already sorted."""
    return sorted_values[min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))]
