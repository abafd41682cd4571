"""``make soak``, shortened: mixed traffic on every route with a broker restart in the middle; its
counts say nothing acknowledged was lost or stored twice, no answer was a 5xx but 503, and no
program logged a secret or a payload, at debug level with every request logged."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.kafka import ROOT

pytestmark = pytest.mark.integration


def test_a_short_soak_loses_and_duplicates_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--seconds", "24", "--clients", "8", "--log-level", "debug"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    out = run.stdout
    print(out)
    assert run.returncode == 0, out + run.stderr[-3000:]
    acknowledged = int(re.search(r"^acknowledged events: (\d+)$", out, re.M)[1])  # type: ignore[index]
    found = int(re.search(r"^found in the store: (\d+)", out, re.M)[1])  # type: ignore[index]
    assert acknowledged > 1000
    assert found == acknowledged
    assert "\nlost: 0\n" in out
    assert "\nduplicated: 0\n" in out
    assert '"data-in 503"' in out  # the broker's restart was felt
    assert "\nlog lines holding a secret or a payload: 0\n" in out  # at debug level, every request logged
