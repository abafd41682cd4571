"""The stores themselves, on real SQLite and real PostgreSQL: a batch is written once by key.

PostgreSQL takes two paths (COPY straight into ``records``; on a key conflict, the temporary table
and ``ON CONFLICT DO NOTHING``): these tests send batches down each and check the same outcome.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from ingest_core.store import Row, RowsRefused, open_store
from ingest_core.store import sqlite as sqlite_store
from ingest_core.store.sqlite import SqliteStore
from tests.support.kafka import ROOT
from tests.support.proc import running, spawned_children
from tests.support.store import fetch_rows

RECEIVED = datetime(2026, 11, 22, 12, 0, 0, 123000, tzinfo=UTC)


def rows(ids: list[str], offset: int = 0, note: str = "first") -> list[Row]:
    return [
        Row("example", event_id, "m1", orjson.dumps({"id": event_id, "note": note}).decode(),
            "t.entry", 0, offset + i, RECEIVED)
        for i, event_id in enumerate(ids)
    ]  # fmt: skip


def by_id(found: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["event_id"]): r for r in found}


async def write(store_url: str, *batches: list[Row]) -> list[int]:
    """Each batch in its own ``insert_records`` call on one store; how many rows each added."""
    store = open_store(store_url)
    try:
        await store.migrate()
        return [await store.insert_records(batch) for batch in batches]
    finally:
        await store.close()


async def test_a_batch_of_new_keys_is_written_whole(store_url: str) -> None:
    assert await write(store_url, rows(["a", "b", "c"])) == [3]
    found = by_id(await fetch_rows(store_url))
    assert sorted(found) == ["a", "b", "c"]
    row = found["b"]
    event = row["event"]
    assert orjson.loads(event if isinstance(event, str | bytes) else orjson.dumps(event)) == {
        "id": "b",
        "note": "first",
    }
    assert (row["dataset"], row["msgid"], row["topic"], row["partition"], row["offset"]) == (
        "example", "m1", "t.entry", 0, 1,
    )  # fmt: skip
    assert row["persisted_at"] is not None


async def test_existing_keys_are_skipped_and_the_new_ones_written(store_url: str) -> None:
    # A batch; a redelivery overlapping it (only "c" and "d" are new, "a" keeps its first write);
    # then the fast path again.
    added = await write(store_url, rows(["a", "b"]), rows(["a", "c", "d"], offset=10, note="again"),
                        rows(["e"], offset=20))  # fmt: skip
    assert added == [2, 2, 1]
    found = by_id(await fetch_rows(store_url))
    assert sorted(found) == ["a", "b", "c", "d", "e"]
    assert found["a"]["offset"] == 0
    assert found["c"]["offset"] == 11


async def test_a_key_twice_within_one_batch_is_written_once(store_url: str) -> None:
    assert await write(store_url, rows(["x", "y", "x"])) == [2]
    found = await fetch_rows(store_url)
    assert sorted(str(r["event_id"]) for r in found) == ["x", "y"]
    assert by_id(found)["x"]["offset"] == 0


# A process that opens a SQLite store (which starts its writer process), says so, and waits.
_HOLDER = """
import asyncio, sys
from ingest_core.store import open_store
async def main():
    store = open_store(sys.argv[1])
    await store.migrate()
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def test_the_sqlite_writer_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, f"sqlite:///{tmp_path / 'r.db'}"], cwd=ROOT,
                              stdout=subprocess.PIPE, start_new_session=True)  # fmt: skip
    with holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == b"ready\n"
            writers = spawned_children(holder.pid)
            assert len(writers) == 1
        finally:
            holder.kill()  # SIGKILL: the store gets no chance to stop its writer
        holder.wait(timeout=30)
        deadline = time.monotonic() + 30
        while running(writers[0]):
            assert time.monotonic() < deadline, "the orphaned writer kept running"
            time.sleep(0.1)


async def test_postgres_refusing_the_rows_data_is_not_unavailability(postgres_url: str) -> None:
    # U+0000 in a text column: PostgreSQL refuses it on every attempt, so it must not be retried as
    # an outage (the sink would stall on it); the connection stays usable.
    store = open_store(postgres_url)
    try:
        await store.migrate()
        with pytest.raises(RowsRefused):
            await store.insert_records(rows(["ok-1", "bad\x00id"]))
        assert await store.insert_records(rows(["ok-1", "ok-2"])) == 2
    finally:
        await store.close()
    assert sorted(by_id(await fetch_rows(postgres_url))) == ["ok-1", "ok-2"]


def _writer_settings(conn: sqlite3.Connection) -> tuple[str, int, int, int, int]:
    """Runs in the SQLite writer process, on its connection."""
    return (
        conn.execute("PRAGMA journal_mode").fetchone()[0],
        conn.execute("PRAGMA page_size").fetchone()[0],
        conn.execute("PRAGMA cache_size").fetchone()[0],
        conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
        conn.execute("PRAGMA synchronous").fetchone()[0],
    )


@pytest.mark.parametrize(
    ("query", "synchronous"), [("", 2), ("?synchronous=full", 2), ("?synchronous=NORMAL", 1)]
)
async def test_the_sqlite_writer_uses_wal_a_large_cache_sparse_checkpoints_and_syncs_commits(
    tmp_path: Path, query: str, synchronous: int
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}{query}")
    assert isinstance(store, SqliteStore)
    try:
        await store.migrate()
        settings = await store._run(_writer_settings)
    finally:
        await store.close()
    # A new database: 16 KiB pages (SQLite's default is 4 KiB); checkpoints every 40 MiB of WAL,
    # 2,560 such pages. cache_size negative: KiB rather than pages (SQLite's default is -2000).
    # synchronous: FULL is 2 (each commit's WAL synced to disk), NORMAL 1.
    assert settings == ("wal", 16_384, -64 * 1024, 2_560, synchronous)
    assert store.path == tmp_path / "r.db"


@pytest.mark.parametrize("journal", ["wal", "delete"])
async def test_an_existing_sqlite_database_keeps_its_page_size(tmp_path: Path, journal: str) -> None:
    # Made by an earlier release (or by hand): 4 KiB pages, a row in it already.
    path = tmp_path / "r.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode={journal}")
        sqlite_store.migrate_connection(conn)
        sqlite_store._insert(conn, sqlite_store._pack(rows(["old"])))
    finally:
        conn.close()
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqliteStore)
    try:
        assert await store.insert_records(rows(["old", "new"])) == 1
        settings = await store._run(_writer_settings)
    finally:
        await store.close()
    # Its pages as they were, and checkpoints still every 40 MiB: 10,240 of them.
    assert settings[:4] == ("wal", 4_096, -64 * 1024, 10_240)
    assert sorted(by_id(await fetch_rows(f"sqlite:///{path}"))) == ["new", "old"]


async def test_sqlite_batches_cross_in_memory_files_or_else_through_the_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = SqliteStore(str(tmp_path / "r.db"))
    try:
        await store.migrate()
        assert store.memfd_handoff  # Linux
        assert await store.insert_records(rows(["a", "b"])) == 2
        assert store.memfd_handoff
        # A writer that cannot open the parent's file (as under a restricted /proc): the batch is
        # sent again through the pipe, and so is every batch after it.
        monkeypatch.setattr(sqlite_store, "_proc_path", lambda fd: f"/nonexistent/{fd}")
        assert await store.insert_records(rows(["c", "d"], offset=2)) == 2
        assert not store.memfd_handoff
        assert await store.insert_records(rows(["e"], offset=4)) == 1
    finally:
        await store.close()
    found = by_id(await fetch_rows(url))
    assert sorted(found) == ["a", "b", "c", "d", "e"]
    assert [found[k]["offset"] for k in "abcde"] == [0, 1, 2, 3, 4]


def test_a_memfd_is_read_only_under_the_name_it_was_sent_with() -> None:
    # A call the parent gave up on may reach the writer after its file was closed and its
    # descriptor's number reused for a later batch: that file must not be taken for its own.
    fd = os.memfd_create("ingest-sink-batch-7", os.MFD_CLOEXEC)
    try:
        os.write(fd, b"packed")
        path = sqlite_store._proc_path(fd)
        assert sqlite_store._read_memfd(path, "ingest-sink-batch-7") == b"packed"
        with pytest.raises(sqlite_store.HandoffFailed, match="no longer ingest-sink-batch-70"):
            sqlite_store._read_memfd(path, "ingest-sink-batch-70")
    finally:
        os.close(fd)


def test_statement_sizes_cover_a_batch_with_few_distinct_sizes() -> None:
    for most in (1, 64, 100, 256):
        for count in range(0, 2 * most + 40):
            sizes = sqlite_store._chunks(count, most)
            assert sum(sizes) == count
            assert all(s == most or (0 < s < most and s & (s - 1) == 0) for s in sizes)  # powers of two
            assert sizes == sorted(sizes, reverse=True)
            smaller = [s for s in sizes if s < most]  # the remainder's binary digits
            assert len(set(smaller)) == len(smaller)
            assert sizes.count(most) == count // most


@pytest.mark.parametrize(("limit", "most"), [(None, 256), (999, 64), (17, 2), (9, 1)])
def test_sqlite_rows_go_in_by_multi_row_statements_within_the_parameter_limit(
    tmp_path: Path, limit: int | None, most: int
) -> None:
    # The writer's own function, in this process, on a connection whose limit on parameters per
    # statement is the default (32,766 since SQLite 3.32) or what older builds had (999), or less.
    conn = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    try:
        sqlite_store.migrate_connection(conn)
        if limit is not None:
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        assert sqlite_store._rows_per_statement(conn) == most
        # 2 * most + 3 rows: statements of several sizes; "k0" repeats across two of them, and a
        # second batch overlaps the first.
        ids = [f"k{i}" for i in range(2 * most + 3)]
        # Each row its own received_at, so a row given another's would show; every other one on a
        # whole second, which isoformat() writes without a fraction.
        first = [r._replace(received_at=RECEIVED + timedelta(seconds=i, microseconds=-(i % 2) * 123_000))
                 for i, r in enumerate(rows([*ids[:-1], "k0"]))]  # fmt: skip
        assert sqlite_store._insert(conn, sqlite_store._pack(first)) == len(ids) - 1
        assert sqlite_store._insert(conn, sqlite_store._pack(rows(ids[-2:], offset=1000))) == 1
        found = conn.execute(
            'SELECT event_id, dataset, msgid, event, topic, partition, "offset", received_at, persisted_at'
            " FROM records"
        ).fetchall()
    finally:
        conn.close()
    got = {r[0]: r for r in found}
    assert sorted(got) == sorted(ids)
    for i, event_id in enumerate(ids[:-1]):
        want = first[i]
        assert got[event_id][:7] == (event_id, want.dataset, want.msgid, want.event_json, want.topic,
                                     want.partition, want.offset)  # fmt: skip
        assert got[event_id][7] == want.received_at.isoformat()
    assert got[ids[-1]][6] == 1001
    # One persisted_at per transaction, an ISO timestamp in UTC.
    assert len({r[8] for r in found if r[0] != ids[-1]}) == 1
    assert datetime.fromisoformat(found[0][8]).utcoffset() is not None
