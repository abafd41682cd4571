"""Bytes that HTTP servers meet on the open internet, for the tests of how they are answered."""

from __future__ import annotations

# The start of a TLS 1.2 ClientHello, as a client sends it to a port it wrongly takes for HTTPS: a
# record header (handshake, TLS 1.0), then the handshake's own. Not HTTP from the first byte.
TLS_CLIENT_HELLO = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32) + b"\r\n\r\n"
