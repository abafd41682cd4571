"""Process helpers: a process's children, read from /proc (Linux)."""

from __future__ import annotations

from pathlib import Path


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


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
