"""Where uploaded files wait for their import: a blob store behind a small interface (put a stream,
open for reading, delete), shared by the gateways that take uploads and the import workers that
read them. Two backends:

- a directory (``UPLOAD_DIR``, the default): one machine, or a volume every pod mounts;
- an S3-compatible bucket (``BLOB_STORE_URL=s3://bucket/prefix``; endpoint, region and credentials
  from the usual ``AWS_*`` variables): any number of pods on any nodes.

Files are streamed in and out, never held whole in memory: into a directory under a temporary name
renamed once complete, into S3 as a multipart upload completed once every part is stored (a reader
never sees half a file; an upload that breaks off or goes over its limit leaves nothing behind).
An S3 blob is read by ranged GETs into an unnamed local file, gone once closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import tempfile
from collections.abc import AsyncIterable, Callable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from ingest_core.env import SettingsError
from ingest_core.errors import BlobStoreDown, IngestError, PayloadTooLarge, StorageFull

T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
PART_BYTES = 8 * 1024 * 1024  # S3's multipart parts (at least 5 MiB but the last) and read ranges


class BlobStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, name: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        """Store ``chunks`` as ``name``; returns its size. Raises PayloadTooLarge beyond ``limit``
        bytes (nothing is kept), BlobStoreDown, and whatever reading ``chunks`` raises."""
        ...

    async def open(self, name: str) -> IO[bytes]:
        """The blob as a local, seekable file (read it in a thread); raises FileNotFoundError,
        BlobStoreDown."""
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

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def put(self, name: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        final = self._dir / _checked(name)
        partial = self._dir / f".{name}.{os.getpid()}.partial"
        try:
            await _file_op(self._dir.mkdir, parents=True, exist_ok=True)
            out = await _file_op(lambda: partial.open("wb"))
            try:
                size = await _write_within(out, chunks, limit)
            finally:
                with contextlib.suppress(OSError):  # its buffer cannot be written either: dropped
                    out.close()
            await _file_op(partial.rename, final)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise
        return size

    async def open(self, name: str) -> IO[bytes]:
        return await asyncio.to_thread((self._dir / _checked(name)).open, "rb")

    async def delete(self, name: str) -> None:
        await asyncio.to_thread((self._dir / _checked(name)).unlink, missing_ok=True)


def _directory_error(exc: OSError) -> IngestError:
    """A failed write: StorageFull when the disk or the quota is full, else BlobStoreDown."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull()
    return BlobStoreDown(f"The upload directory failed: {exc.strerror or type(exc).__name__}")


def _within(size: int, limit: int) -> int:
    if size > limit:
        raise PayloadTooLarge(f"The upload exceeds {limit} bytes")
    return size


async def _write_within(out: IO[bytes], chunks: AsyncIterable[bytes], limit: int) -> int:
    """Write ``chunks`` (what reading them raises goes up as it is) within ``limit`` bytes, synced."""
    size = 0
    async for chunk in chunks:
        size = _within(size + len(chunk), limit)
        await _file_op(out.write, chunk)
    await _file_op(out.flush)
    await _file_op(os.fsync, out.fileno())
    return size


async def _file_op(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A file operation in a thread, its OSError as StorageFull or BlobStoreDown."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except OSError as exc:
        raise _directory_error(exc) from None


class S3BlobStore:
    """Blobs as objects ``<prefix><name>`` of a bucket, through aiobotocore (botocore reads
    ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and the credentials from the environment as usual)."""

    def __init__(self, url: str, scratch: Path) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket:
            raise ValueError(f"BLOB_STORE_URL: use s3://<bucket>[/<prefix>] (got {url!r})")
        self.bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._scratch = scratch  # where opened blobs are downloaded to (unnamed files)
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    async def start(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        self._stack = contextlib.AsyncExitStack()
        config = AioConfig(
            connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
        )
        self._client = await self._stack.enter_async_context(get_session().create_client("s3", config=config))

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack, self._client = None, None

    def _key(self, name: str) -> str:
        return self._prefix + _checked(name)

    async def put(self, name: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        key = self._key(name)
        with _store_errors():
            upload = await self._client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        buffer = bytearray()
        size = 0

        async def send() -> None:
            number = len(parts) + 1
            with _store_errors():
                done = await self._client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer)
                )
            parts.append({"ETag": done["ETag"], "PartNumber": number})
            buffer.clear()

        try:
            async for chunk in chunks:
                size = _within(size + len(chunk), limit)
                buffer += chunk
                if len(buffer) >= PART_BYTES:
                    await send()
            if buffer or not parts:
                await send()
            with _store_errors():
                await self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            with contextlib.suppress(Exception):
                await self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return size

    async def open(self, name: str) -> IO[bytes]:
        from botocore.exceptions import ClientError

        key = self._key(name)
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"s3://{self.bucket}/{key}") from None
            raise BlobStoreDown(f"The blob store did not answer: {exc}") from None
        await asyncio.to_thread(self._scratch.mkdir, parents=True, exist_ok=True)
        out: IO[bytes] = await asyncio.to_thread(lambda: tempfile.TemporaryFile("w+b", dir=self._scratch))
        try:
            size = int(head["ContentLength"])
            for start in range(0, size, PART_BYTES):
                end = min(start + PART_BYTES, size) - 1
                with _store_errors():
                    got = await self._client.get_object(
                        Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}"
                    )
                    async with got["Body"] as body:
                        data = await body.read()
                await asyncio.to_thread(out.write, data)
            await asyncio.to_thread(out.seek, 0)
        except BaseException:
            out.close()
            raise
        return out

    async def delete(self, name: str) -> None:
        with _store_errors():
            await self._client.delete_object(Bucket=self.bucket, Key=self._key(name))


@contextlib.contextmanager
def _store_errors() -> Any:
    """botocore's failures (S3 down, refusing, timing out) as BlobStoreDown."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise BlobStoreDown(f"The blob store did not answer: {type(exc).__name__}") from None


def blob_store_url(env: Mapping[str, str]) -> str | None:
    """``BLOB_STORE_URL`` checked: ``s3://<bucket>[/<prefix>]``, or None (unset: the directory)."""
    url = env.get("BLOB_STORE_URL", "").strip() or None
    if url is not None and (not url.startswith("s3://") or not url.removeprefix("s3://").split("/")[0]):
        raise SettingsError(f"BLOB_STORE_URL: use s3://<bucket>[/<prefix>] (got {url[:100]!r})")
    return url


def open_blob_store(url: str | None, upload_dir: Path) -> BlobStore:
    """``BLOB_STORE_URL``'s store: unset, the directory ``UPLOAD_DIR``; ``s3://...``, S3 (with
    ``UPLOAD_DIR`` as the scratch space blobs are read into)."""
    if not url:
        return DirectoryBlobStore(upload_dir)
    return S3BlobStore(url, upload_dir)
