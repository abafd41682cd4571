"""The shell every program runs in, so that none repeats it: settings and registry read once at
start (a bad one ends the program with ``program: message`` and status 2), logging, the event loop
and the collector's tuning, the ``/health`` ``/ready`` ``/metrics`` handlers, and serving an aiohttp
app until SIGTERM or SIGINT, then a clean shutdown (the app's cleanup contexts stop its work).

A program's ``__main__`` reads as:

    settings, registry = start("ingest-x", XSettings.from_env)
    return run("ingest-x", create_app(settings, registry), settings, listen_tcp(host, port))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ingest_core.env import SettingsError
from ingest_core.kafka import client_config_from_env, configure_clients
from ingest_core.log_repeats import bound_repeats
from ingest_core.registry import Registry, RegistryError, load_registry
from ingest_core.runtime import install_event_loop, running_loop_name, tune_gc

log = logging.getLogger(__name__)


class ServiceSettings(Protocol):
    """What the shell reads of every program's settings."""

    @property
    def topics_file(self) -> Path: ...
    @property
    def log_level(self) -> str: ...
    @property
    def log_format(self) -> str: ...
    @property
    def event_loop(self) -> str: ...


S = TypeVar("S", bound=ServiceSettings)


class StartError(Exception):
    """The program cannot start; its message is printed after the program's name."""


def start(
    program: str, from_env: Callable[[Mapping[str, str]], S], check: Callable[[S], None] | None = None
) -> tuple[S, Registry]:
    """The program's settings (``check`` may refuse them with ValueError) and the registry, with
    logging configured; prints ``program: message`` and exits with status 2 when either is bad."""
    try:
        settings = from_env(os.environ)
        configure_clients(client_config_from_env(os.environ))
        if check is not None:
            check(settings)
        registry = load_registry(settings.topics_file)
    except (SettingsError, RegistryError, ValueError) as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger(program).debug("settings: %s", settings)
    return settings, registry


def configure_logging(level: str, fmt: str = "text") -> None:
    """``LOG_FORMAT``: ``text`` lines, or ``json``: one object a line (``time``, ``level``,
    ``logger``, ``message``, ``pid``, and what a line adds: ``request_id``, ``route``, ``status``,
    ``duration_ms``...). Neither ever holds an event's payload or a secret: no log call is given one."""
    bound_repeats()
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}{process}", style="{", timestamp="time",
                rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
            )
        )  # fmt: skip
        logging.basicConfig(level=level.upper(), handlers=[handler])
        return
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
    )


# Starts listening on a set-up runner; returns what stops listening (None: the runner's cleanup does).
Listen = Callable[[web.AppRunner], Awaitable[Callable[[], None] | None]]


def listen_tcp(host: str, port: int) -> Listen:
    """Plain aiohttp listening, for the small ports of the consumer programs."""

    async def listen(runner: web.AppRunner) -> None:
        await web.TCPSite(runner, host, port).start()
        log.info("listening on http://%s:%d (%s)", host, port, running_loop_name())

    return listen


def run(program: str, serve: Callable[[], Coroutine[Any, Any, None]], event_loop: str) -> int:
    """Run ``serve`` on the event loop named, after tuning the collector: 0 when it returns, 1 (with
    ``program: message``) when it raises StartError."""
    install_event_loop(event_loop)
    tune_gc()
    try:
        asyncio.run(serve())
    except StartError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 1
    return 0


async def serve_app(app: web.Application, listen: Listen, **runner_options: Any) -> None:
    """Serve ``app`` until SIGTERM or SIGINT; then stop listening, let aiohttp finish the requests in
    progress (within ``shutdown_timeout``, a runner option) and run the app's cleanup contexts.

    Raises StartError when listening fails (an address in use); the app's start-up contexts raise
    what they raise."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **runner_options)
    await runner.setup()
    try:
        try:
            stop_listening = await listen(runner)
        except OSError as exc:
            raise StartError(f"cannot listen: {exc}") from None
        try:
            await stop.wait()
        finally:
            if stop_listening is not None:
                stop_listening()
    finally:
        await runner.cleanup()


Ready = Callable[[], tuple[bool, dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def ops_handlers(
    ready: Ready, metrics: CollectorRegistry, before_scrape: Callable[[], None] | None = None
) -> dict[str, Handler]:
    """``/health`` (the process answers), ``/ready`` (``ready()`` says whether the program can do
    its work, and what else to report), ``/metrics`` (``metrics`` in Prometheus' text format, after
    ``before_scrape`` has brought any gauges up to date)."""

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def is_ready(_request: web.Request) -> web.Response:
        ok, details = ready()
        return web.json_response(
            {"status": "ready" if ok else "not ready", **details}, status=200 if ok else 503
        )

    async def scrape(_request: web.Request) -> web.Response:
        if before_scrape is not None:
            before_scrape()
        return web.Response(body=generate_latest(metrics), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return {"/health": health, "/ready": is_ready, "/metrics": scrape}


def reload_on_sighup(
    topics_file: Path, apply: Callable[[Registry], None], program: str
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A consumer program's configuration reload: on SIGHUP the registry is read again and, when it
    is good, handed to ``apply``; a bad one is refused with a log line and the old one stays."""

    async def reload() -> None:
        try:
            registry = await asyncio.to_thread(load_registry, topics_file)
        except RegistryError as exc:
            # A bad file, not a bug: no traceback.
            refused = "configuration reload refused, the old configuration stays in force"
            log.error("%s: %s: %s", program, refused, exc)  # noqa: TRY400
            return
        apply(registry)
        log.info("%s: configuration reloaded: %d topics", program, len(registry.entry_topics()))

    async def context(_app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        hup = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
            hup = True
        yield
        if hup:
            loop.remove_signal_handler(signal.SIGHUP)

    return context


# Set on a consumer program's app: its loop failed, and the program exits with status 1.
FAILED = web.AppKey("service.failed", list)


async def run_or_stop(work: Coroutine[Any, Any, None], app: web.Application, what: str) -> None:
    """Run a consumer program's loop. The loop is the program: should it fail, the program stops
    (status 1, so that its supervisor restarts it) rather than keep a port that looks alive;
    nothing uncommitted is lost, it is read again."""
    try:
        await work
    except Exception:
        log.critical("%s failed; stopping", what, exc_info=True)
        app[FAILED].append(True)
        signal.raise_signal(signal.SIGTERM)


class ConsumerSettings(ServiceSettings, Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def store_url(self) -> str: ...


C = TypeVar("C", bound=ConsumerSettings)


def consumer_main(
    program: str,
    from_env: Callable[[Mapping[str, str]], C],
    create_app: Callable[[C, Registry], web.Application],
) -> int:
    """A consumer program from start to exit: settings, registry and ``STORE_URL`` checked, its app
    served on its small port until SIGTERM; 1 when its loop failed."""
    from ingest_core.store import check_store_url

    settings, registry = start(program, from_env, lambda s: check_store_url(s.store_url))
    app = create_app(settings, registry)
    app.setdefault(FAILED, [])
    status = run(
        program, lambda: serve_app(app, listen_tcp(settings.host, settings.port)), settings.event_loop
    )
    return 1 if app[FAILED] else status


async def retry_unavailable(
    call: Callable[[], Awaitable[None]], max_backoff_s: float, stopping: Callable[[], bool]
) -> None:
    """``call()`` until it returns, waiting 0.2 s, 0.4 s... up to ``max_backoff_s`` after each
    StoreUnavailable (a store down at start is waited for, not fatal); given up once ``stopping()``."""
    from ingest_core.store import StoreUnavailable

    backoff = 0.2
    while not stopping():
        try:
            await call()
        except StoreUnavailable as exc:
            log.warning("store unavailable, retrying in %.1fs: %s", backoff, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
        else:
            return
