"""An ingestion request's body: read within ``BODY_TIMEOUT_MS`` and ``MAX_BODY_BYTES``, and decoded
from its ``Content-Encoding`` (``gzip``, ``deflate`` or none), so that ``MAX_BODY_BYTES`` bounds
what a compressed body becomes, not only what it was on the wire.

The gateway's server runs with aiohttp's own decompression off (``gateway.app.SERVER_OPTIONS``).
With it on, an encoding aiohttp cannot decode (``br``, ``zstd``, anything unknown) was refused in
its own plain-text 400 before any route ran, and logged as an error with a traceback, and a corrupt
gzip body failed the read with an unexplained 500. Here each has an answer of its own in the API's
envelope.

``Expect: 100-continue``: aiohttp's default answer sends ``100 Continue`` before the route runs, so
a client was told to send a body the route then refused unread (too large, in a coding it does not
take, or over the in-flight bounds). The route's ``expect_continue`` sends nothing; ``read_body``
sends ``100 Continue`` once the route has decided to read the body, so a refused client never
sends it. (An expectation other than ``100-continue`` is ignored, which RFC 9110 allows; aiohttp
answered it with a plain-text 417 outside the API's envelope.)

Decoding runs on the event loop: zlib inflates a body faster than the JSON that comes out of it
is parsed, so a thread would not pay for its hand-off.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Final

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11

from gateway.errors import BodyTimeout, InvalidInput, PayloadTooLarge, UnsupportedEncoding, UnsupportedMedia

GZIP: Final = "gzip"
DEFLATE: Final = "deflate"
_CODINGS: Final = {"gzip": GZIP, "x-gzip": GZIP, "deflate": DEFLATE, "identity": None, "": None}
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_ZLIB_WBITS: Final = zlib.MAX_WBITS
_RAW_WBITS: Final = -zlib.MAX_WBITS


def content_coding(request: web.Request) -> str | None:
    """The body's coding (``GZIP`` or ``DEFLATE``), or None when it is sent as it is.

    Raises UnsupportedEncoding for any other ``Content-Encoding``, a list of several included.
    """
    value = request.headers.get(hdrs.CONTENT_ENCODING)
    if value is None:
        return None
    try:
        return _CODINGS[value.strip().lower()]
    except KeyError:
        raise UnsupportedEncoding(
            f"Content-Encoding {value[:64]!r} is not supported: send the body as it is, or in gzip or deflate"
        ) from None


# Bodies in a form's encodings or in XML are not JSON whatever they hold: a client that sent one
# (curl -d without a Content-Type sends a form's) is told so, rather than given a schema error. Any
# other type is read as JSON, as the reference reads it (clients send text/plain, octet-stream...).
_NOT_JSON: Final = (
    "application/x-www-form-urlencoded",
    "multipart/",
    "text/html",
    "application/xml",
    "text/xml",
)


def check_json_media(request: web.Request) -> None:
    """Raises UnsupportedMedia for a Content-Type that is certainly not JSON."""
    media = request.headers.get(hdrs.CONTENT_TYPE)
    if media is None or media.startswith("application/json"):
        return
    kind = media.partition(";")[0].strip().lower()
    if kind.startswith(_NOT_JSON) or kind.endswith("+xml"):
        raise UnsupportedMedia(f"Content-Type {kind[:64]!r} is not JSON: send the body as application/json")


async def expect_continue(_request: web.Request) -> None:
    """The ingestion route's expect handler: nothing is sent yet (``read_body`` sends ``100
    Continue``)."""


def _expects_continue(request: web.Request) -> bool:
    return request.version == HttpVersion11 and request.headers.get(hdrs.EXPECT, "").lower() == "100-continue"


_INCOMPLETE: Final = "Request body is incomplete: the connection broke while it was read"


def too_large(limit: int) -> PayloadTooLarge:
    """The answer to a body over ``limit`` bytes as sent (whether announced, or found reading it)."""
    return PayloadTooLarge(f"Request body exceeds {limit} bytes")


def held_size(request: web.Request, coding: str | None, limit: int) -> int:
    """The most the request's body may take once read and decoded, for the in-flight bounds: its
    announced length, else (sent chunked, or compressed) ``limit``. Raises PayloadTooLarge when the
    announced length is over ``limit``."""
    length = request.content_length
    if length is None:
        return limit
    if length > limit:
        raise too_large(limit)
    return length if coding is None else limit


def received_body(request: web.Request, coding: str | None, limit: int) -> bytes | None:
    """The request's body, decoded, when it has already come in full (with its headers: nearly
    every request); None when more is to come, which ``read_body`` then waits for. Raises as
    ``read_body`` does.

    Taken from aiohttp's buffer as it lies: ``request.read()`` would await twice and copy it (its
    cost per request: bench/NOTES.md). A client expecting ``100
    Continue`` that sent its body anyway is not sent one, which RFC 9110 allows once the content is
    in.
    """
    content = request.content
    if not content.is_eof():
        return None
    try:
        raw = content.read_nowait()
    except (ConnectionResetError, web.RequestPayloadError):
        raise InvalidInput(_INCOMPLETE) from None
    # aiohttp's own check (client_max_size) is in request.read(), not here; a body of announced
    # length was checked against the limit before it was read.
    if len(raw) > limit:
        raise too_large(limit)
    return raw if coding is None else decode(raw, coding, limit)


async def read_body(request: web.Request, coding: str | None, limit: int, timeout_s: float) -> bytes:
    """The request's body, decoded, once it has come in (see ``received_body``); raises
    PayloadTooLarge, BodyTimeout and InvalidInput (the body broke off, or is not valid in its
    coding). Call it once the request may send its body: a client that waits for ``100 Continue``
    is sent it here."""
    if _expects_continue(request):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # As aiohttp's own handler does: the interim answer is not part of the response's size.
        request.writer.output_size = 0
    try:
        # A client that announces a body and stalls would hold its share of the in-flight bounds
        # for as long as it keeps the connection open.
        async with asyncio.timeout(timeout_s):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large(limit) from None
    except TimeoutError:
        raise BodyTimeout() from None
    except (ConnectionResetError, web.RequestPayloadError):
        # The client went away mid-body (ConnectionResetError), or aiohttp could not take the body
        # in (RequestPayloadError): the client's doing, not a failure of ours to log as one. (A
        # chunk aiohttp cannot parse leaves the body without an end: BodyTimeout, above.)
        raise InvalidInput(_INCOMPLETE) from None
    return raw if coding is None else decode(raw, coding, limit)


def decode(data: bytes, coding: str, limit: int) -> bytes:
    """``data`` decompressed from ``coding``, never more than ``limit`` bytes of it.

    Raises PayloadTooLarge beyond ``limit`` (found without inflating more than ``limit`` + 1
    bytes), InvalidInput when ``data`` is not a complete stream of that coding.
    """
    if coding == GZIP:
        # RFC 1952 allows several members one after another (``cat a.gz b.gz``): each is inflated.
        out, rest = _inflate(data, _GZIP_WBITS, limit, coding)
        while rest:
            more, rest = _inflate(rest, _GZIP_WBITS, limit - len(out), coding)
            out += more
        return out
    # HTTP's "deflate" is the zlib format (RFC 9110), but some clients send raw deflate: the zlib
    # header's check tells them apart.
    wbits = _ZLIB_WBITS if len(data) >= 2 and int.from_bytes(data[:2], "big") % 31 == 0 else _RAW_WBITS
    out, rest = _inflate(data, wbits, limit, coding)
    if rest:
        raise InvalidInput(f"Request body is not valid {coding}: data after the end of the stream")
    return out


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> tuple[bytes, bytes]:
    """One stream inflated, and the bytes after its end."""
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"Request body is not valid {coding}: {exc}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"Request body exceeds {limit} bytes once decompressed")
    if not inflater.eof:
        raise InvalidInput(f"Request body is not valid {coding}: the stream ends early")
    return out, inflater.unused_data
