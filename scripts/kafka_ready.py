"""Does a Kafka broker answer a Metadata request? Exit 0 when it lists at least one broker.

    python3 scripts/kafka_ready.py HOST PORT

Standard library only: scripts/kafka.sh runs it before any virtualenv exists. Speaks the Kafka
wire protocol directly: a Metadata request v4 (request header v1, all topics, no auto-creation).
"""

from __future__ import annotations

import socket
import struct
import sys

_METADATA, _VERSION, _CORRELATION = 3, 4, 0x1A2B3C
_CLIENT_ID = b"kafka-ready"


def _request() -> bytes:
    header = struct.pack(">hhih", _METADATA, _VERSION, _CORRELATION, len(_CLIENT_ID)) + _CLIENT_ID
    body = struct.pack(">ib", -1, 0)  # topics: null (all); allow_auto_topic_creation: false
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def brokers(host: str, port: int, timeout_s: float = 3.0) -> int:
    """How many brokers the cluster's metadata lists; raises OSError/ValueError on any failure."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(_request())
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        response = _read_exact(sock, size)
    correlation, _throttle, count = struct.unpack(">iii", response[:12])
    if correlation != _CORRELATION:
        raise ValueError("unexpected correlation id")
    return int(count)


def main() -> int:
    try:
        return 0 if brokers(sys.argv[1], int(sys.argv[2])) >= 1 else 1
    except (OSError, ValueError, struct.error):
        return 1


if __name__ == "__main__":
    sys.exit(main())
