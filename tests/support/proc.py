"""Process helpers: a process's children, read from /proc (Linux); servers stopped with their owner."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]

# Run by a process of its own, from the repository's root: leaves its parent at once (forks, and
# the first half exits, so the caller waits for nothing and holds no process object), waits until
# the owner is gone (or a zombie, see ``running``), then runs the command.
_STOP_WHEN_GONE = """
import os, subprocess, sys, time
if os.fork():
    os._exit(0)
from tests.support.proc import running
while running(int(sys.argv[1])):
    time.sleep(1)
subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL, timeout=180, check=False)
"""


def _stats() -> list[tuple[int, list[str]]]:
    """Every process's pid and the fields of its /proc stat after the command (state, ppid, pgrp...)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append((int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()))
            except OSError:
                continue
    return out


def children_of(pid: int) -> list[int]:
    return [child for child, fields in _stats() if int(fields[1]) == pid]


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    return [pid for pid, fields in _stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie may wait for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def spawned_children(pid: int) -> list[int]:
    """The children of ``pid`` that multiprocessing started with "spawn" (workers, writer processes)."""
    out = []
    for child in children_of(pid):
        try:
            if b"multiprocessing.spawn" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except OSError:
            continue  # gone meanwhile
    return out


def stop_when_gone(owner: int, stop: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    """Run ``stop`` once process ``owner`` is gone.

    A server started for a test run (or a benchmark) is stopped by its fixture's finaliser, which
    does not run when pytest is killed by a signal: the broker or the database then kept running.
    This watcher stops it then, and finds nothing left to stop after a normal run. Its own session:
    a Ctrl-C to pytest's process group does not reach it.
    """
    subprocess.run(
        [sys.executable, "-c", _STOP_WHEN_GONE, str(owner), *stop],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=None if env is None else dict(env),
        cwd=_ROOT,
        start_new_session=True,
        check=True,
        timeout=30,
    )
