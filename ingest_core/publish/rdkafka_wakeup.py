"""Wakes the event loop as soon as a confluent-kafka producer has delivery reports to serve.

librdkafka can write a byte to a file descriptor when its main queue (delivery reports, errors,
logs) gets events while nobody is polling it (``rd_kafka_queue_io_event_enable``). With a pipe
watched by the event loop, reports are served as soon as they exist. Without it they wait, whenever
every request is waiting for Kafka, for the publisher's next timer tick: ~1 ms, in whole
milliseconds on uvloop. That matters at low concurrency; at 32 and more, a report is usually served
right after another request's records are queued anyway (figures: bench/NOTES.md).

confluent-kafka is pinned (pyproject.toml) to the versions this was tested with, and
tests/unit/test_confluent_pin.py fails when the installed one would fall back to the timer.

confluent-kafka does not expose that call (its pull request #1448 adds it for consumers only,
unmerged), so it is made through ctypes, on the librdkafka confluent-kafka loaded and the
``rd_kafka_t`` pointer its client objects hold right after the Python object header (``Handle`` in
confluent_kafka.h, unchanged since 2016). Each assumption is checked before anything is enabled:
the library found reports the version ``confluent_kafka.libversion()`` does, and the pointer read
names a producer with this producer's client id. If one does not hold, ``attach`` returns None and
the publisher keeps its timer; ``KAFKA_REPORT_WAKEUP=timer`` does the same on purpose.

No report can be missed: librdkafka clears its "wake-up sent" flag under the queue's lock while
serving it, so a report queued after a poll writes a new byte.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import glob
import logging
import os
from collections.abc import Callable
from pathlib import Path

import confluent_kafka
from confluent_kafka import Producer

log = logging.getLogger(__name__)

_RD_KAFKA_PRODUCER = 0  # rd_kafka_type_t


def _load_librdkafka() -> ctypes.CDLL | None:
    """The librdkafka confluent-kafka uses: the one its wheel bundles, else the system's."""
    package = Path(confluent_kafka.__file__).parent
    # Where the wheels put it: auditwheel (Linux) beside the package, delocate (macOS) inside it.
    bundled = sorted(
        glob.glob(str(package.parent / "confluent_kafka.libs" / "librdkafka*.so*"))
        + glob.glob(str(package / ".dylibs" / "librdkafka*.dylib"))
    )
    for path in [*bundled, None]:
        if path is None:  # looked for only now: find_library may run ldconfig
            path = ctypes.util.find_library("rdkafka")
            if path is None:
                break
        try:
            lib = ctypes.CDLL(path)
            lib.rd_kafka_version.restype = ctypes.c_int
            if lib.rd_kafka_version() != confluent_kafka.libversion()[1]:
                continue
        except (OSError, AttributeError):
            continue
        lib.rd_kafka_name.restype = ctypes.c_char_p
        lib.rd_kafka_name.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_type.restype = ctypes.c_int
        lib.rd_kafka_type.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_queue_get_main.restype = ctypes.c_void_p
        lib.rd_kafka_queue_get_main.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_queue_io_event_enable.restype = None
        lib.rd_kafka_queue_io_event_enable.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
        ]  # fmt: skip
        lib.rd_kafka_queue_destroy.restype = None
        lib.rd_kafka_queue_destroy.argtypes = [ctypes.c_void_p]
        return lib
    return None


_librdkafka = functools.cache(_load_librdkafka)  # looked for once per process


def producer_handle(producer: Producer, client_id: str) -> tuple[ctypes.CDLL, int] | None:
    """librdkafka, and the ``rd_kafka_t`` of ``producer`` (created with ``client_id``), or None
    where either cannot be had for certain (see the module docstring)."""
    lib = _librdkafka()
    if lib is None:
        log.info("librdkafka not found through ctypes")
        return None
    rk = ctypes.c_void_p.from_address(id(producer) + object.__basicsize__).value
    if not rk:
        return None
    name = lib.rd_kafka_name(rk) or b""
    if lib.rd_kafka_type(rk) != _RD_KAFKA_PRODUCER or not name.startswith(f"{client_id}#producer-".encode()):
        log.warning("unexpected confluent-kafka object layout")
        return None
    return lib, rk


class ReportWakeup:
    """A pipe librdkafka writes to when ``producer`` has events; the loop then serves them."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        queue: int,
        loop: asyncio.AbstractEventLoop,
        producer: Producer,
        serve: Callable[[], object],
    ) -> None:
        self._lib = lib
        self._queue: int | None = queue
        self._loop = loop
        self._read_fd, self._write_fd = os.pipe()
        self.producer = producer
        self._serve = serve
        self.wakeups = 0
        try:
            # librdkafka writes from its own threads: it must never block on a full pipe.
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)
            # Not every event loop watches pipes (Windows' proactor does not): the caller keeps
            # its timer then.
            loop.add_reader(self._read_fd, self._on_readable)
        except BaseException:
            os.close(self._read_fd)
            os.close(self._write_fd)
            lib.rd_kafka_queue_destroy(queue)
            raise
        lib.rd_kafka_queue_io_event_enable(queue, self._write_fd, b"1", 1)
        # Events queued before this point wrote no byte: serve them, so that the next one does.
        serve()

    @classmethod
    def attach(
        cls,
        loop: asyncio.AbstractEventLoop,
        producer: Producer,
        client_id: str,
        serve: Callable[[], object] | None = None,
    ) -> ReportWakeup | None:
        """Wake-ups for ``producer`` (created with ``client_id``), or None where they cannot be had.

        ``serve`` is what a wake-up calls: ``producer.poll(0)`` unless told otherwise.
        """
        handle = producer_handle(producer, client_id)
        if handle is None:
            log.info("delivery reports are served by a timer")
            return None
        lib, rk = handle
        queue = lib.rd_kafka_queue_get_main(rk)
        if not queue:
            return None
        try:
            return cls(lib, queue, loop, producer, serve or functools.partial(producer.poll, 0))
        except (NotImplementedError, OSError) as exc:
            log.info("no pipe to wake the event loop (%s): delivery reports are served by a timer", exc)
            return None

    def _on_readable(self) -> None:
        self.wakeups += 1
        try:
            os.read(self._read_fd, 4096)
        except BlockingIOError:
            pass
        self._serve()

    def close(self) -> None:
        """Stop the wake-ups (before the producer goes away) and close the pipe."""
        if self._queue is None:
            return
        self._lib.rd_kafka_queue_io_event_enable(self._queue, -1, None, 0)
        self._lib.rd_kafka_queue_destroy(self._queue)
        self._queue = None
        self._loop.remove_reader(self._read_fd)
        os.close(self._read_fd)
        os.close(self._write_fd)
