"""Configuration reload without a restart: ``topics.yaml``, the schemas it names and ``AUTH_FILE``
are read again on SIGHUP (and, with ``WATCH_CONFIG=true``, when one of them changes on disk).

A new configuration is read and checked whole before anything changes; a bad one is refused with a
log line naming the error, and the old one stays in force. A good one's missing topics are created,
then it replaces the old one between two requests: a request in progress finishes with the
configuration it started with, and none is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from gateway.context import CONTEXT, GatewayContext
from gateway.settings import GatewaySettings
from ingest_core.auth import AuthFileError, Principals, load_principals
from ingest_core.kafka import ensure_topics
from ingest_core.prepare import Ingestor
from ingest_core.registry import Registry, RegistryError, load_registry
from ingest_core.source_import import SourceImporter
from ingest_core.topics_cli import topic_specs

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 2.0


class ConfigReloader:
    def __init__(self, ctx: GatewayContext, settings: GatewaySettings, keep_principals: bool) -> None:
        self._ctx = ctx
        self._settings = settings
        # Principals given to the app directly (tests) are not read from a file again.
        self._keep_principals = keep_principals
        self.state = ctx.metrics.config
        self._lock = asyncio.Lock()

    def files(self) -> list[Path]:
        """Every file the configuration was read from."""
        registry = self._ctx.registry
        schemas = {d.schema_file for d in registry.records.values() if d.schema_file is not None}
        out = [registry.path, *sorted(schemas)]
        if self._settings.auth_file is not None:
            out.append(self._settings.auth_file)
        return out

    async def reload(self) -> bool:
        """Read and apply the configuration; False (the old one kept) when it is refused."""
        async with self._lock:
            start = time.perf_counter()
            try:
                registry, principals = await asyncio.to_thread(self._read)
            except (RegistryError, AuthFileError) as exc:
                self.state.failures += 1
                log.error("configuration reload refused, the old configuration stays in force: %s", exc)  # noqa: TRY400
                return False
            try:
                specs = topic_specs(registry)
                await asyncio.to_thread(ensure_topics, self._settings.kafka_bootstrap_servers, specs)
            except Exception as exc:  # noqa: BLE001 - topics are checked per request: a missing one is a 404
                log.warning("configuration reload: could not create its topics now: %s", exc)
            self._apply(registry, principals)
            self.state.generation += 1
            self.state.load_seconds = time.perf_counter() - start
            log.info(
                "configuration reloaded (generation %d): %d datasets, %d sources, %d types, %d entities",
                self.state.generation, len(registry.datasets), len(registry.sources), len(registry.types),
                len(registry.entities),
            )  # fmt: skip
            return True

    def _read(self) -> tuple[Registry, Principals | None]:
        registry = load_registry(self._settings.topics_file)
        principals = None if self._keep_principals else load_principals(self._settings.auth_file)
        return registry, principals

    def _apply(self, registry: Registry, principals: Principals | None) -> None:
        # Plain assignments on the loop's thread: each request reads them once, whole.
        s, ctx = self._settings, self._ctx
        ctx.ingestor = Ingestor(registry, s.max_batch_events, s.kafka_max_record_bytes)
        ctx.source_importer = SourceImporter(registry, s.max_batch_events, s.kafka_max_record_bytes)
        ctx.registry = registry
        if principals is not None:
            ctx.principals = principals
        ctx.metrics.set_datasets(d.id for d in registry)

    async def watch(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        """Reload whenever a configuration file's modification time or size changes."""
        seen = await asyncio.to_thread(_stamps, self.files())
        while True:
            await asyncio.sleep(interval_s)
            now = await asyncio.to_thread(_stamps, self.files())
            if now != seen:
                await self.reload()
                seen = await asyncio.to_thread(_stamps, self.files())


def _stamps(files: list[Path]) -> dict[Path, tuple[int, int] | None]:
    out: dict[Path, tuple[int, int] | None] = {}
    for f in files:
        try:
            st = f.stat()
            out[f] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[f] = None
    return out


RELOADER = web.AppKey("gateway.reloader", ConfigReloader)


def reload_context(
    settings: GatewaySettings, keep_principals: bool
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's reloader, SIGHUP (where this loop can take signals) and the watch of the files."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        reloader = app[RELOADER] = ConfigReloader(app[CONTEXT], settings, keep_principals)
        loop = asyncio.get_running_loop()
        hup = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reloader.reload()))
            hup = True
        watching = loop.create_task(reloader.watch()) if settings.watch_config else None
        yield
        if hup:
            loop.remove_signal_handler(signal.SIGHUP)
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching

    return context
