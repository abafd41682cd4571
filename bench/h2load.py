"""HTTP/1.1 load from h2load (nghttp2's load generator, one thread) with its per-request log, read
back so that latency is known per status: how fast requests were shed (503) and how fast the
accepted ones (200) were answered, which wrk's one histogram over every response cannot tell apart.
Used for the overload scenario."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import procs


@dataclass(frozen=True, slots=True)
class StatusLatency:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class H2loadResult:
    seconds: float  # from the first request's start to the last answer's end
    overall: StatusLatency  # every answered request, whatever its status
    by_status: dict[int, StatusLatency]
    unanswered: int  # h2load's "errored" and "timeout": no answer at all (its "failed" counts 5xx too)

    @property
    def answered(self) -> int:
        return sum(s.count for s in self.by_status.values())

    def count(self, status: int) -> int:
        s = self.by_status.get(status)
        return s.count if s else 0


def _quantile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def _latency(ms: list[float]) -> StatusLatency:
    ms.sort()
    return StatusLatency(len(ms), _quantile(ms, 0.5), _quantile(ms, 0.99), ms[-1])


def parse_log(text: str) -> tuple[float, StatusLatency, dict[int, StatusLatency]]:
    """h2load's ``--log-file``: one line per answered request, tab-separated: start (µs since the
    epoch), status, elapsed (µs). Returns the span in seconds, latency overall and per status."""
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    if not rows:
        raise ValueError("h2load logged no answered request")
    starts = [int(r[0]) for r in rows]
    ends = [int(r[0]) + int(r[2]) for r in rows]
    per: dict[int, list[float]] = {}
    for r in rows:
        per.setdefault(int(r[1]), []).append(int(r[2]) / 1000)
    overall = _latency([int(r[2]) / 1000 for r in rows])
    by_status = {status: _latency(ms) for status, ms in sorted(per.items())}
    return (max(ends) - min(starts)) / 1e6, overall, by_status


def _unanswered(stdout: str) -> int:
    # "requests: 100 total, 100 started, 98 done, 60 succeeded, 40 failed, 1 errored, 1 timeout"
    for line in stdout.splitlines():
        if line.startswith("requests:"):
            counts = {p.split()[1]: int(p.split()[0]) for p in line.split(":", 1)[1].split(",")}
            return counts["errored"] + counts["timeout"]
    raise ValueError(f"unexpected h2load output:\n{stdout}")


def run(url: str, body: bytes, connections: int, seconds: float) -> H2loadResult:
    h2load = procs.tool("h2load")
    with tempfile.TemporaryDirectory() as tmp:
        body_file, log = Path(tmp) / "body.json", Path(tmp) / "requests.log"
        body_file.write_bytes(body)
        proc = subprocess.run(
            [
                h2load, "--h1", "-t1", f"-c{connections}", "-D", str(seconds), "-d", str(body_file),
                "-H", "Content-Type: application/json", "--log-file", str(log), url,
            ],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        )  # fmt: skip
        span, overall, by_status = parse_log(log.read_text())
    return H2loadResult(span, overall, by_status, _unanswered(proc.stdout))
