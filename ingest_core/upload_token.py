"""Signed upload tokens: what makes an upload URL of a JSONL import valid, and for how long.

A token names the import and its expiry (Unix seconds) and carries an HMAC-SHA256 over both with
``UPLOAD_SIGNING_KEY``: ``<import_id>.<expiry>.<signature, base64url>``. Anyone holding the URL may
upload to that one import until it expires (as with a presigned S3 URL); a token altered in any
part, or signed with another key, is refused, and the signature is compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from ingest_core.errors import Forbidden

VALID_FOR_S = 3600


def _signature(key: bytes, import_id: str, expiry: int) -> str:
    mac = hmac.new(key, f"{import_id}.{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign(key: bytes, import_id: str, now_s: float | None = None, valid_for_s: int = VALID_FOR_S) -> str:
    """A token for uploading to ``import_id`` until ``valid_for_s`` from now."""
    expiry = int(now_s if now_s is not None else time.time()) + valid_for_s
    return f"{import_id}.{expiry}.{_signature(key, import_id, expiry)}"


def verify(key: bytes, token: str | None, import_id: str, now_s: float | None = None) -> None:
    """Raises Forbidden unless ``token`` was signed with ``key`` for ``import_id`` and has not expired."""
    # ASCII only: compare_digest refuses other strings, and int() reads non-ASCII digits too.
    parts = (token or "").split(".") if (token or "").isascii() else []
    if len(parts) != 3 or not parts[1].isdigit():
        raise Forbidden("The upload URL is not valid")
    named, expiry_text, signature = parts
    if not hmac.compare_digest(signature, _signature(key, named, int(expiry_text))) or named != import_id:
        raise Forbidden("The upload URL is not valid")
    if int(expiry_text) < (now_s if now_s is not None else time.time()):
        raise Forbidden("The upload URL has expired: create a new import")
