"""Process-level set-up shared by the programs."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
import threading
import time
from collections.abc import Callable, Mapping

from ingest_core.env import SettingsError, env_choice

EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def event_loop_from_env(env: Mapping[str, str]) -> str:
    """``EVENT_LOOP``, resolved: ``uvloop`` or ``asyncio``. ``auto`` (the default) is uvloop when it
    is installed (it is optional: not on every platform), else asyncio's own loop; ``uvloop`` asked
    for and not installed is a settings error, not a silent fallback. uvloop is the default because
    the gateway's loop spends less CPU per single-event request on it (bench/NOTES.md)."""
    choice = env_choice(env, "EVENT_LOOP", "auto", EVENT_LOOPS)
    installed = importlib.util.find_spec("uvloop") is not None
    if choice == "auto":
        return "uvloop" if installed else "asyncio"
    if choice == "uvloop" and not installed:
        raise SettingsError("EVENT_LOOP='uvloop': uvloop is not installed; use auto or asyncio")
    return choice


def install_event_loop(name: str) -> None:
    """Make ``asyncio.run`` and aiohttp's ``run_app`` use the loop named (``uvloop``, ``asyncio``)."""
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(None)  # asyncio's default


def running_loop_name() -> str:
    """The running event loop's kind, as logged at start: what runs, not what was asked for."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def tune_gc() -> None:
    """Collect less often: both programs allocate a tree of parsed JSON per event, which dies young.

    With thousands of events in flight, the default collector (gen0 every 700 allocations) spends
    its time scanning them, and latency's tail grows with it (figures: bench/NOTES.md). Objects
    alive after start-up are frozen out of collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


def when_orphaned(parent_pid: int, action: Callable[[], None], interval_s: float = 0.5) -> None:
    """Run ``action`` (on a daemon thread) once this process's parent is no longer ``parent_pid``.

    A parent killed outright (SIGKILL, OOM) cannot stop its children: they notice instead. The
    parent's pid is passed in by the parent rather than read here with ``os.getppid()``: a child
    that is still importing when its parent dies would otherwise read its new parent (init or a
    subreaper) and never notice.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        action()

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
