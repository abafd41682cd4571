"""HTTP load from wrk (one thread, a Lua script that POSTs a fixed body, or one with a new msgid each
time), and its output parsed."""

from __future__ import annotations

import re
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import procs

_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
"""
# Every request with a msgid of its own (``<run>-<n>`` in place of the body's msgid, which must
# occur nowhere else in it), so that each event is a new row downstream rather than a duplicate.
_UNIQUE_LUA = """
local marker = os.getenv("BENCH_MSGID_MARKER")
local at = assert(string.find(wrk.body, marker, 1, true))
local head, tail = string.sub(wrk.body, 1, at - 1), string.sub(wrk.body, at + #marker)
local run, n = os.getenv("BENCH_RUN_ID"), 0
request = function()
   n = n + 1
   return wrk.format(nil, nil, nil, head .. run .. "-" .. n .. tail)
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unparsable latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(output: str) -> WrkResult:
    lat = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in ([\d.]+)(s|m)", output)
    if not (lat and p50 and p99 and total):
        raise ValueError(f"unexpected wrk output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    seconds = float(total.group(2)) * (60 if total.group(3) == "m" else 1)
    requests = int(total.group(1))
    return WrkResult(
        requests=requests,
        seconds=seconds,
        rps=requests / seconds,
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        max_ms=_ms(lat.group(3)),
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(x) for x in sock.groups()) if sock else 0,
    )


def run(
    url: str, body: bytes, connections: int, seconds: float, unique_msgid: str | None = None,
    headers: dict[str, str] | None = None,
) -> WrkResult:  # fmt: skip
    """wrk against ``url``; with ``unique_msgid`` (the body's msgid), each request gets a new one;
    ``headers`` are sent with every request (names and values of the bench's own making)."""
    wrk = procs.tool("wrk")
    with tempfile.TemporaryDirectory() as tmp:
        body_file, script = Path(tmp) / "body.json", Path(tmp) / "post.lua"
        body_file.write_bytes(body)
        extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
        script.write_text(_LUA + extra + (_UNIQUE_LUA if unique_msgid else ""))
        proc = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            env={
                "BENCH_BODY_FILE": str(body_file),
                "BENCH_MSGID_MARKER": unique_msgid or "",
                "BENCH_RUN_ID": uuid.uuid4().hex[:12],
                "PATH": "/usr/bin:/bin",
            },
            timeout=seconds + 60,
            check=True,
        )
    return parse(proc.stdout)
