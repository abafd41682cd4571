"""Serving: one gateway process, or a supervisor of several sharing the port.

With ``GATEWAY_WORKERS`` > 1 this process only supervises: it starts that many worker processes,
which share the port through ``SO_REUSEPORT`` (the kernel spreads connections between them), passes
SIGTERM/SIGINT on to them, and when one dies unexpectedly stops the others and exits with status 1,
so that whoever supervises it restarts the whole.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from aiohttp import web

from gateway.app import SERVER_OPTIONS, create_app
from gateway.context import CONTEXT
from gateway.listener import Listener, ListenError, connection_limit
from gateway.settings import GatewaySettings
from ingest_core.errors import KafkaUnavailable
from ingest_core.kafka import client_config_from_env, configure_clients
from ingest_core.registry import Registry, load_registry
from ingest_core.runtime import running_loop_name, when_orphaned
from ingest_core.service import Listen, StartError, configure_logging, run, serve_app

log = logging.getLogger("gateway")
PROGRAM = "ingest-gateway"


def serve(settings: GatewaySettings, registry: Registry) -> int:
    """Run one gateway process until SIGTERM/SIGINT; 1 when Kafka is unusable at start or the address
    cannot be listened on."""
    return run(PROGRAM, lambda: _serve(settings, registry), settings.event_loop)


async def _serve(settings: GatewaySettings, registry: Registry) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting, let aiohttp finish the requests in
    progress (within the shutdown timeout) and run the app's cleanup, which flushes the producer.

    Not aiohttp's own site: its listening socket is the event loop's, which on uvloop accepts one
    connection per loop iteration (see ``gateway.listener``).
    """
    try:
        await serve_app(
            create_app(settings, registry), _listen(settings),
            shutdown_timeout=settings.delivery_timeout_ms / 1000 + 2,
            keepalive_timeout=settings.keepalive_timeout_s, **SERVER_OPTIONS,
        )  # fmt: skip
    except KafkaUnavailable as exc:  # from the app's start: Kafka did not answer
        raise StartError(f"{exc.message} ({settings.kafka_bootstrap_servers})") from None
    except ListenError as exc:
        raise StartError(str(exc)) from None


def _listen(settings: GatewaySettings) -> Listen:
    async def listen(runner: web.AppRunner) -> Callable[[], None]:
        assert runner.server is not None, "set up before listening"
        server = runner.server
        listener = Listener(
            server, settings.host, settings.port, backlog=settings.listen_backlog,
            reuse_port=settings.workers > 1, max_connections=connection_limit(settings.max_connections),
            open_connections=lambda: len(server.connections),
        )  # fmt: skip
        runner.app[CONTEXT].metrics.connections = listener
        listener.start()
        log.info("listening on http://%s:%d (%s)", settings.host, listener.port, running_loop_name())
        return listener.close

    return listen


def _worker(settings: GatewaySettings, supervisor_pid: int) -> None:
    # An orphaned worker stops as on SIGTERM: it finishes the requests it holds, then exits.
    when_orphaned(supervisor_pid, lambda: os.kill(os.getpid(), signal.SIGTERM))
    configure_logging(settings.log_level, settings.log_format)
    configure_clients(client_config_from_env(os.environ))  # checked by the supervisor already
    # Each worker reads the registry itself: it was validated by the supervisor a moment ago.
    sys.exit(serve(settings, load_registry(settings.topics_file)))


def supervise(settings: GatewaySettings) -> int:
    """Start ``settings.workers`` workers on one port; return when they have all stopped."""
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_worker, args=(settings, os.getpid()), name=f"gateway-{i}")
        for i in range(settings.workers)
    ]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for w in workers:
            if w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGTERM)

    def reload(signum: int, _frame: FrameType | None) -> None:
        for w in workers:
            if w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGHUP)  # each worker reloads its own configuration

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    for w in workers:
        w.start()
    log.info("supervising %d gateway workers on port %d", len(workers), settings.port)
    failed = False
    running = list(workers)
    while running:
        multiprocessing.connection.wait([w.sentinel for w in running])
        for w in [w for w in running if not w.is_alive()]:
            running.remove(w)
            if not stopping:
                log.error("worker %s exited with status %s; stopping the others", w.name, w.exitcode)
                failed = True
                stop(signal.SIGTERM, None)
    return 1 if failed or any(w.exitcode not in (0, -signal.SIGTERM) for w in workers) else 0
