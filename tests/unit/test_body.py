"""Decoding a request body from its Content-Encoding, within the body-size limit."""

from __future__ import annotations

import gzip
import zlib

import pytest

from gateway.body import DEFLATE, GZIP, decode
from ingest_core.errors import InvalidInput, PayloadTooLarge

BODY = b'{"id":"api.data.in","data":[' + b",".join(b'{"eid":"E%d"}' % i for i in range(500)) + b"]}"


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        (GZIP, gzip.compress(BODY)),
        (DEFLATE, zlib.compress(BODY)),  # HTTP's deflate: the zlib format
        (DEFLATE, raw_deflate(BODY)),  # what some clients send instead
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
def test_each_coding_gives_the_body_back(coding: str, encoded: bytes) -> None:
    assert decode(encoded, coding, len(BODY)) == BODY


def test_gzip_members_one_after_another_are_one_body() -> None:
    half = len(BODY) // 2
    assert decode(gzip.compress(BODY[:half]) + gzip.compress(BODY[half:]), GZIP, len(BODY)) == BODY


def test_beyond_the_limit_once_decoded_is_too_large_however_small_on_the_wire() -> None:
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))  # ~50 KB that would become 50 MiB
    assert len(bomb) < 100 * 1024
    with pytest.raises(PayloadTooLarge, match="exceeds 1048576 bytes once decompressed"):
        decode(bomb, GZIP, 1024 * 1024)
    with pytest.raises(PayloadTooLarge):
        decode(zlib.compress(BODY), DEFLATE, len(BODY) - 1)
    # Over the limit only across two members counts too.
    with pytest.raises(PayloadTooLarge):
        decode(gzip.compress(BODY) + gzip.compress(b"x"), GZIP, len(BODY))


@pytest.mark.parametrize(
    ("coding", "encoded", "reason"),
    [
        (GZIP, BODY, "incorrect header check"),  # not compressed at all
        (GZIP, gzip.compress(BODY)[:-20], "the stream ends early"),
        (GZIP, b"", "the stream ends early"),
        (GZIP, gzip.compress(BODY) + b"junk", "incorrect header check"),  # not a second member
        (DEFLATE, zlib.compress(BODY)[:-10], "the stream ends early"),
        (DEFLATE, zlib.compress(BODY) + b"junk", "data after the end of the stream"),
    ],
    ids=["plain", "truncated", "empty", "trailing-junk", "deflate-truncated", "deflate-trailing"],
)
def test_a_body_that_is_not_what_its_coding_says_is_invalid_input(
    coding: str, encoded: bytes, reason: str
) -> None:
    with pytest.raises(InvalidInput, match=f"Request body is not valid {coding}: .*{reason}"):
        decode(encoded, coding, 10 * len(BODY))
