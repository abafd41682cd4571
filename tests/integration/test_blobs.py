"""The directory blob store on the real filesystem: streamed in whole, or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingest_core.blobs import DirectoryBlobStore
from ingest_core.errors import PayloadTooLarge

pytestmark = pytest.mark.integration


async def chunks(count: int, size: int = 65536, fail_at: int | None = None) -> AsyncIterator[bytes]:
    for i in range(count):
        if i == fail_at:
            raise ConnectionResetError("the client went away")
        yield bytes([65 + i % 26]) * size


async def test_a_blob_is_stored_whole_read_back_and_deleted(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path / "uploads")
    assert await store.put("import_a", chunks(20), limit=20 * 65536) == 20 * 65536
    with store.open("import_a") as f:
        assert f.read(3) == b"AAA"
        f.seek(65536)
        assert f.read(1) == b"B"
    await store.delete("import_a")
    await store.delete("import_a")  # gone already: no error
    with pytest.raises(FileNotFoundError):
        store.open("import_a")


async def test_an_upload_over_its_limit_or_broken_off_leaves_nothing(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path / "uploads")
    with pytest.raises(PayloadTooLarge):
        await store.put("import_b", chunks(20), limit=10 * 65536)
    with pytest.raises(ConnectionResetError):
        await store.put("import_c", chunks(20, fail_at=5), limit=100 * 65536)
    assert list((tmp_path / "uploads").iterdir()) == []


def test_names_cannot_leave_the_directory(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path)
    for name in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="not a blob name"):
            store.open(name)
