"""The store by itself: the sink's own rows, decoded beforehand, written without Kafka.

``python -m bench.store STORE_URL TOPICS_FILE TOPIC ROWS [copy]``; prints one JSON line.

- By default the project's store (``ingest_core.store``) inserts the rows as the sink does: batches
  of ``SINK_BATCH_SIZE``, ``SINK_BATCHES_IN_FLIGHT`` at once (their defaults). What the sink could
  persist were reading Kafka and decoding free: a bound on the sink's events/s on this machine.
- ``copy`` (PostgreSQL only): the same rows as COPY text, one COPY per core, each streamed from a
  file in one transaction: the server's own ceiling for these rows, with no work per row in Python.

The rows are those the sink writes for the bench's backlog (``bench.payloads.backlog_value``),
decoded by the sink's own decoder. Rows per second: through the store, from after its first tenth
of the batches (the connections, the first pages) to the last commit; by COPY, from its start to
the last commit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import orjson

from bench.payloads import backlog_value
from consumers.sink.decode import Decoder
from consumers.sink.settings import SinkSettings
from ingest_core.registry import load_registry
from ingest_core.store import Row, open_store
from ingest_core.store.postgres import COLUMNS


def rows_for(topics_file: Path, topic: str, count: int) -> list[Row]:
    decoder = Decoder(load_registry(topics_file))
    rows = []
    for i in range(count):
        row = decoder.decode(topic, i % 3, i // 3, backlog_value(i))
        if not isinstance(row, Row):
            raise RuntimeError(f"record {i} was refused: {row}")
        rows.append(row)
    return rows


async def through_store(url: str, rows: list[Row]) -> float:
    defaults = SinkSettings()
    size, in_flight = defaults.batch_size, defaults.batches_in_flight
    batches = [rows[i : i + size] for i in range(0, len(rows), size)]
    if len(batches) < 2:
        raise ValueError(f"{len(rows)} rows: at least two batches of {size} are needed, one to warm up")
    warm_up = max(1, len(batches) // 10)
    store = open_store(url)
    await store.migrate()
    gate = asyncio.Semaphore(in_flight)

    async def insert(batch: Sequence[Row]) -> int:
        async with gate:
            return await store.insert_records(batch)

    try:
        await asyncio.gather(*(insert(b) for b in batches[:warm_up]))
        start = time.perf_counter()
        written = sum(await asyncio.gather(*(insert(b) for b in batches[warm_up:])))
        elapsed = time.perf_counter() - start
    finally:
        await store.close()
    if written != sum(len(b) for b in batches[warm_up:]):
        raise RuntimeError(f"the store wrote {written} rows, not every one")
    return written / elapsed


def _copy_text(row: Row) -> str:
    def field(value: object) -> str:
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    return "\t".join(field(v) for v in row) + "\n"


async def server_copy(url: str, rows: list[Row]) -> float:
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"copy measures PostgreSQL's own COPY: {url.split(':', 1)[0]} has none")
    store = open_store(url)
    await store.migrate()
    await store.close()
    parts = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-copy-") as tmp:
        files = []
        for p in range(parts):
            path = Path(tmp) / f"part{p}.tsv"
            path.write_text("".join(_copy_text(r) for r in rows[p::parts]), encoding="utf-8")
            files.append(path)
        conns = [await asyncpg.connect(url) for _ in files]
        try:
            start = time.perf_counter()
            statuses = await asyncio.gather(
                *(
                    c.copy_to_table("records", source=f, columns=COLUMNS, format="text")
                    for c, f in zip(conns, files, strict=True)
                )
            )
            elapsed = time.perf_counter() - start
        finally:
            for c in conns:
                await c.close()
    written = sum(int(s.rsplit(" ", 1)[-1]) for s in statuses)
    if written != len(rows):
        raise RuntimeError(f"COPY wrote {written} rows of {len(rows)}")
    return written / elapsed


def main() -> None:
    url, topics_file, topic, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    rows = rows_for(topics_file, topic, count)
    if sys.argv[5:] == ["copy"]:
        rate = asyncio.run(server_copy(url, rows))
    else:
        rate = asyncio.run(through_store(url, rows))
    print(orjson.dumps({"events_per_s": rate}).decode())


if __name__ == "__main__":
    main()
