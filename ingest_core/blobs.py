"""Where uploaded files wait for their import: a blob store behind a small interface (put a stream,
open for reading, delete). Here a directory (``UPLOAD_DIR``); an S3-compatible backend fits the
same interface. Files are streamed in and out, never held whole in memory.

A blob is written under a temporary name and renamed once complete, so a reader never sees half a
file, and an upload that breaks off or goes over its limit leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterable
from pathlib import Path
from typing import IO, Protocol

from ingest_core.errors import PayloadTooLarge

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class BlobStore(Protocol):
    async def put(self, name: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        """Store ``chunks`` as ``name``; returns its size. Raises PayloadTooLarge beyond ``limit``
        bytes (nothing is kept), and whatever reading ``chunks`` raises."""
        ...

    def open(self, name: str) -> IO[bytes]:
        """The blob for reading (blocking: read it in a thread); raises FileNotFoundError."""
        ...

    async def delete(self, name: str) -> None:
        """Remove the blob, if it is there."""
        ...


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a blob name: {name[:64]!r}")
    return name


class DirectoryBlobStore:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    async def put(self, name: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        final = self._dir / _checked(name)
        await asyncio.to_thread(self._dir.mkdir, parents=True, exist_ok=True)
        partial = self._dir / f".{name}.{os.getpid()}.partial"
        out = await asyncio.to_thread(partial.open, "wb")
        try:
            size = await _write_within(out, chunks, limit)
        except BaseException:
            out.close()
            partial.unlink(missing_ok=True)
            raise
        out.close()
        await asyncio.to_thread(partial.rename, final)
        return size

    def open(self, name: str) -> IO[bytes]:
        return (self._dir / _checked(name)).open("rb")

    async def delete(self, name: str) -> None:
        await asyncio.to_thread((self._dir / _checked(name)).unlink, missing_ok=True)


async def _write_within(out: IO[bytes], chunks: AsyncIterable[bytes], limit: int) -> int:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The upload exceeds {limit} bytes")
        await asyncio.to_thread(out.write, chunk)
    await asyncio.to_thread(out.flush)
    await asyncio.to_thread(os.fsync, out.fileno())
    return size
