"""The blob stores on real storage (a directory; an S3 bucket on a real S3-compatible server):
streamed in whole, or not at all; read back; deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingest_core.blobs import PART_BYTES, BlobStore, DirectoryBlobStore, S3BlobStore
from ingest_core.errors import BlobStoreDown, PayloadTooLarge
from tests.support.kafka import free_port_pair

pytestmark = pytest.mark.integration

CHUNK = 1024 * 1024


async def chunks(count: int, size: int = CHUNK, fail_at: int | None = None) -> AsyncIterator[bytes]:
    for i in range(count):
        if i == fail_at:
            raise ConnectionResetError("the client went away")
        yield bytes([65 + i % 26]) * size


@pytest.fixture(params=["directory", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    blobs: BlobStore
    if request.param == "directory":
        blobs = DirectoryBlobStore(tmp_path / "uploads")
    else:
        blobs = S3BlobStore(request.getfixturevalue("s3_bucket"), tmp_path / "scratch")
    await blobs.start()
    try:
        yield blobs
    finally:
        await blobs.close()


async def test_a_blob_is_stored_whole_read_back_and_deleted(store: BlobStore) -> None:
    # 20 MiB: in S3, three parts of a multipart upload, read back in three ranges.
    assert await store.put("import_a", chunks(20), limit=20 * CHUNK) == 20 * CHUNK
    assert 20 * CHUNK > 2 * PART_BYTES
    with await store.open("import_a") as f:
        assert f.read(3) == b"AAA"
        f.seek(9 * CHUNK)
        assert f.read(1) == b"J"
        f.seek(19 * CHUNK + CHUNK - 1)
        assert f.read() == b"T"
    await store.delete("import_a")
    await store.delete("import_a")  # gone already: no error
    with pytest.raises(FileNotFoundError):
        await store.open("import_a")


async def test_an_empty_blob_is_a_blob(store: BlobStore) -> None:
    assert await store.put("import_e", chunks(0), limit=10) == 0
    with await store.open("import_e") as f:
        assert f.read() == b""


async def test_an_upload_over_its_limit_or_broken_off_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(PayloadTooLarge):
        await store.put("import_b", chunks(20), limit=10 * CHUNK)
    with pytest.raises(ConnectionResetError):
        await store.put("import_c", chunks(20, fail_at=12), limit=100 * CHUNK)
    for name in ("import_b", "import_c"):
        with pytest.raises(FileNotFoundError):
            await store.open(name)


async def test_an_s3_store_that_does_not_answer_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port_pair()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    store = S3BlobStore("s3://nowhere", tmp_path)
    await store.start()
    try:
        with pytest.raises(BlobStoreDown):
            await store.put("import_d", chunks(1), limit=CHUNK)
    finally:
        await store.close()


async def test_names_cannot_leave_the_store(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path)
    for name in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="not a blob name"):
            await store.open(name)
