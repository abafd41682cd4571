"""SQLite store (the default): WAL mode, one connection, owned by a dedicated writer process.

SQLite has one writer at a time, so a single connection is both the simplest and the fastest
arrangement. It lives in a child process rather than a thread because binding and stepping through
thousands of rows holds the GIL for most of the time: in a thread it competed with the decoding of
the next batch, in a process the two run on separate cores. Rows cross as one MessagePack
document per batch, their fields in one flat list (see ``_pack``; msgspec encodes them several
times faster than pickle), which the writer cuts into the statements' parameters; a transaction is
committed in the child before the call returns, so an acknowledged write is on disk exactly as
before.

Commits are ``synchronous=FULL`` unless the URL asks for ``?synchronous=normal``: in WAL mode FULL
syncs the WAL at each commit, so a batch whose offsets are then committed to Kafka survives a power
loss or a crash of the machine, not only of the process. NORMAL leaves the last commits in the
operating system's cache until the next checkpoint: a machine crash could roll them back after
Kafka had their offsets, and those events would be missing from the store. FULL costs the writer
~10-20% more time per row (bench/NOTES.md).

On Linux the document does not go through the executor's pipe: the parent writes it into an
anonymous in-memory file (``memfd_create``) and the writer opens that through ``/proc``: a batch
crossed the pipe 64 KB and two wake-ups at a time, with an allocation per read in
``multiprocessing``, while the writer sat idle. Each file is named for its batch, and the writer
reads one only under that name (see ``_read_memfd``). Where the writer cannot open the file (no
``/proc``, a restricted one), the store says so once and sends batches through the pipe from then
on.

The child is spawned (never forked: the parent runs librdkafka's threads), ignores SIGINT (Ctrl-C
reaches the whole process group; the parent decides when to stop), and exits when the parent goes
away. If it dies, the call in flight fails as StoreUnavailable and the next call starts a new one.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import multiprocessing
import os
import signal
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec

from ingest_core.runtime import when_orphaned
from ingest_core.store.base import Row, StoreUnavailable
from ingest_core.store.migrations import MIGRATIONS

SQLITE_SYNCHRONOUS = ("full", "normal")


def sqlite_target(url: str) -> tuple[str, str]:
    """The path and the ``synchronous`` mode of ``sqlite:///<path>[?synchronous=full|normal]``
    (``full`` unless asked otherwise); raises ValueError naming what is wrong."""
    path, _, query = url.removeprefix("sqlite:///").partition("?")
    if not path:
        raise ValueError("STORE_URL: sqlite:/// needs a path, e.g. sqlite:///./data/ingest.db")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise ValueError(
            f"STORE_URL: malformed SQLite options {query!r} (e.g. ?synchronous=normal)"
        ) from None
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise ValueError(f"STORE_URL: unknown SQLite option {unknown[0]!r} (known: synchronous)")
    synchronous = options.get("synchronous", "full").lower()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"STORE_URL: synchronous={synchronous!r}: expected full or normal")
    return path, synchronous


T = TypeVar("T")

log = logging.getLogger(__name__)

_COLUMNS = 'dataset, event_id, msgid, event, topic, partition, "offset", received_at, persisted_at'
ROWS_PER_STATEMENT = 256  # at most; see _insert
_FIELDS = len(Row._fields)  # persisted_at is not one: it is the parameter ?1, the same for every row

_encode = msgspec.msgpack.Encoder().encode
# In the writer: a batch as _pack made it, every row's fields one after the other in one list.
_decode_flat = msgspec.msgpack.Decoder(list[str | int]).decode
# The modes STORE_URL may name, as SQLite spells them: only these ever reach the PRAGMA.
_SYNCHRONOUS = {mode: mode.upper() for mode in SQLITE_SYNCHRONOUS}

CACHE_KIB = 64 * 1024  # the writer's page cache; see _call
PAGE_SIZE = 16_384  # bytes, for a database the writer creates; see _call
WAL_CHECKPOINT_BYTES = 40 * 1024 * 1024  # the WAL's size before SQLite checkpoints it; see _call

# In the writer process: its one connection, opened on first use.
_conn: sqlite3.Connection | None = None


def _writer_init(parent_pid: int) -> None:
    # Exiting mid-transaction is safe: SQLite rolls it back, and the parent committed no offsets.
    when_orphaned(parent_pid, lambda: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(path: str, synchronous: str, fn: Callable[..., T], *args: Any) -> T:
    """Runs in the writer process: ``fn(connection, *args)``."""
    global _conn
    if _conn is None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=5)
        # Only a database's first write sets its page size: one created here gets 16 KiB pages, an
        # existing one keeps its own. A commit then writes a quarter as many WAL frames, each with
        # its own header and checksum (figures: bench/NOTES.md).
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: each commit synced to disk before its offsets go to Kafka (see the docstring).
        conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[synchronous]}")
        # Events whose ids arrive in random order (single events with UUID msgids) insert into
        # random pages of the primary key's index: with SQLite's 2 MiB default cache most of them
        # are read again, and each commit writes thousands of scattered pages to the WAL. A 64 MiB
        # cache keeps the index of a few million rows, and checkpointing every ~40 MiB (10,000
        # 4 KiB pages) instead of every 1,000 pages writes a page dirtied by several commits back
        # once.
        conn.execute(f"PRAGMA cache_size={-CACHE_KIB}")
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page_size}")
        _conn = conn
    return fn(_conn, *args)


def migrate_connection(conn: sqlite3.Connection) -> int:
    """Apply the pending migrations on ``conn`` (autocommit mode); returns the schema version.
    Safe beside another process migrating the same file: each is re-checked under the write lock."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for m in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if (
                conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (m.version,)).fetchone()
                is None
            ):
                conn.execute(m.sqlite)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (m.version, m.name, datetime.now(UTC).isoformat()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    (version,) = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(version)


class HandoffFailed(Exception):
    """The writer could not open the in-memory file holding a batch (raised in the writer)."""


def _read_memfd(path: str, name: str) -> bytes:
    try:
        with open(path, "rb") as f:
            # The parent closes the file once its call is over. Only a call it gave up on (cancelled
            # while queued) can come here after that, and then the descriptor's number may belong
            # to a later batch's file by now: the name says whose it is.
            if not os.readlink(f"/proc/self/fd/{f.fileno()}").startswith(f"/memfd:{name} "):
                raise HandoffFailed(f"{path} is no longer {name}")
            return f.read()
    except OSError as exc:
        raise HandoffFailed(str(exc)) from None


@functools.cache  # a handful of sizes (see _chunks)
def _statement(rows: int) -> str:
    """``INSERT`` of ``rows`` rows: ?1 is persisted_at, then each row's fields in a Row's order."""
    values = ",".join(
        "(" + ",".join(f"?{2 + _FIELDS * r + f}" for f in range(_FIELDS)) + ",?1)" for r in range(rows)
    )
    # Only placeholders are joined into it, never a value.
    return f"INSERT INTO records ({_COLUMNS}) VALUES {values} ON CONFLICT (dataset, event_id) DO NOTHING"  # noqa: S608


def _chunks(count: int, most: int) -> list[int]:
    """Statement sizes covering ``count`` rows: as many of ``most`` as fit, then the remainder's
    binary digits. A handful of sizes, so every statement is prepared once and then reused from
    the connection's cache (a statement per remainder size would be prepared for almost every
    batch)."""
    sizes = [most] * (count // most)
    rest = count % most
    while rest:
        digit = 1 << (rest.bit_length() - 1)  # the highest one left
        sizes.append(digit)
        rest -= digit
    return sizes


def _rows_per_statement(conn: sqlite3.Connection) -> int:
    """ROWS_PER_STATEMENT, halved until this SQLite's limit on parameters per statement takes it."""
    fit = (conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1) // _FIELDS
    most = ROWS_PER_STATEMENT
    while most > max(fit, 1):
        most //= 2
    return most


def _pack(rows: Sequence[Row]) -> bytes:
    """A batch for the writer, made in the sink's process: the rows' fields in one flat list, each
    ``received_at`` as the text stored, as one MessagePack document.

    The writer then only cuts the list into statements' parameters. With the rows as tuples and
    ``received_at`` as a timestamp it also built a tuple per row, chained them, and looked up each
    row's text, costing it more than this costs here; the writer is the busier of the two.
    """
    flat: list[Any] = list(itertools.chain.from_iterable(rows))
    # The decoder gives the rows of one request one datetime object (see consumers.sink.decode), so
    # its id finds its text: hashing an aware datetime works out its UTC offset every time. Within
    # this call the rows keep the objects alive, so no id is reused.
    iso: dict[int, str] = {}
    flat[_FIELDS - 1 :: _FIELDS] = [
        iso.get(key := id(at)) or iso.setdefault(key, at.isoformat()) for at in flat[_FIELDS - 1 :: _FIELDS]
    ]
    return _encode(flat)


def _insert(conn: sqlite3.Connection, batch: bytes | tuple[str, str]) -> int:
    """Insert a batch (see _pack): its MessagePack document, or the path and name of a memfd
    holding it.

    Rows go in by multi-row ``INSERT ... VALUES``, up to 256 rows per statement, their parameters
    one flat list made in C: ``executemany`` bound and stepped one statement per row, and in the
    writer's profile that (with building a tuple of parameters per row) was most of its CPU
    (figures: bench/NOTES.md).
    """
    if isinstance(batch, tuple):
        batch = _read_memfd(*batch)
    flat = _decode_flat(batch)
    most = _rows_per_statement(conn)
    before = conn.total_changes
    conn.execute("BEGIN IMMEDIATE")
    try:
        now = datetime.now(UTC).isoformat()
        start = 0
        for size in _chunks(len(flat) // _FIELDS, most):
            end = start + size * _FIELDS
            conn.execute(_statement(size), [now, *flat[start:end]])
            start = end
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return conn.total_changes - before


def _ping(conn: sqlite3.Connection) -> bool:
    conn.execute("SELECT 1").fetchone()
    return True


def _close(conn: sqlite3.Connection) -> None:
    global _conn
    conn.close()
    _conn = None


def _proc_path(fd: int) -> str:
    """Where another process of ours opens this process's file descriptor ``fd``."""
    return f"/proc/{os.getpid()}/fd/{fd}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SqliteStore:
    def __init__(self, path: str, synchronous: str = "full") -> None:
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous={synchronous!r}: expected full or normal")
        self.path = Path(path)
        self.synchronous = synchronous
        self._writer: ProcessPoolExecutor | None = None
        self._batches = itertools.count()
        # Batches cross in memfds (see the module docstring) until the writer cannot open one.
        self.memfd_handoff = hasattr(os, "memfd_create")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._writer is None:
            self._writer = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_writer_init,
                initargs=(os.getpid(),),
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer, _call, str(self.path), self.synchronous, fn, *args
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite {self.path}: {exc}") from exc
        except BrokenProcessPool as exc:
            writer, self._writer = self._writer, None
            writer.shutdown(wait=False)
            raise StoreUnavailable(f"SQLite {self.path}: the writer process died ({exc})") from exc

    async def migrate(self) -> int:
        version = await self._run(migrate_connection)
        log.info("SQLite %s: WAL, synchronous=%s", self.path, _SYNCHRONOUS[self.synchronous])
        return version

    async def insert_records(self, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        packed = _pack(rows)
        if not self.memfd_handoff:
            return await self._run(_insert, packed)
        name = f"ingest-sink-batch-{next(self._batches)}"
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            _write_all(fd, packed)
            return await self._run(_insert, (_proc_path(fd), name))
        except HandoffFailed as exc:
            log.warning("the SQLite writer cannot open in-memory files (%s): using a pipe instead", exc)
            self.memfd_handoff = False
        finally:
            # Closed only now: the writer has opened and read the file, or has gone.
            os.close(fd)
        return await self._run(_insert, packed)

    async def ping(self) -> bool:
        try:
            return await self._run(_ping)
        except StoreUnavailable:
            return False

    async def close(self) -> None:
        if self._writer is None:
            return
        try:
            await self._run(_close)
        except StoreUnavailable:
            pass  # nothing to close in a writer that is gone
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
