"""Accepting connections: every connection waiting in the listen queue, each time the socket is ready.

uvloop's libuv accepts one connection per event-loop iteration (libuv 1.45, "don't accept()
connections in a loop"). A gateway under load spends tens of milliseconds in an iteration, so a
burst of new connections waited in the kernel's queue for seconds, unseen by the gateway's own
latency histogram (figures: bench/NOTES.md, "the gateway's own listener"). asyncio's own loop
accepts up to its backlog per iteration; this does the same on any loop, and hands each connection
to the loop with ``connect_accepted_socket``.

Bounded: at most ``backlog`` connections per readiness event, and at most ``max_connections`` open
at once: at the limit, accepting pauses until a connection closes (checked every 20 ms), and new
clients wait in the kernel's listen queue, then in their own SYN retries, instead of taking file
descriptors the process needs for Kafka. When the process runs out of file descriptors or kernel
memory all the same, accepting pauses for a second, as asyncio does, instead of spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_PAUSE_S = 1.0
_LIMIT_POLL_S = 0.02  # at the connection limit: how often to look for a closed connection
_LIMIT_LOG_EVERY_S = 60.0
# Descriptors kept for everything but client connections: Kafka's sockets (two producers, each with
# a few per broker), librdkafka's and the event loop's pipes, the listening sockets, logs.
FD_RESERVE = 128
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_limit(wanted: int) -> int:
    """The most connections to keep open: ``wanted``, when the process may open that many file
    descriptors and ``FD_RESERVE`` more. Raises the soft limit (``ulimit -n``) towards the hard one
    if need be, as servers commonly do; where even the hard limit is too low, fewer connections,
    with a warning, so that accepting never takes the descriptors Kafka's connections need."""
    need = wanted + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the file descriptor limit from %d to %d: %s", soft, target, exc)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    limit = max(soft - FD_RESERVE, soft // 2, 1)
    log.warning(
        "GATEWAY_MAX_CONNECTIONS=%d lowered to %d: this process may open only %d file descriptors "
        "(ulimit -n; %d kept for Kafka and the rest)", wanted, limit, soft, min(FD_RESERVE, soft - limit),
    )  # fmt: skip
    return limit


class ListenError(Exception):
    """The address cannot be listened on (a name that does not resolve, a port in use, ...)."""


def _bind(host: str, port: int, backlog: int, reuse_port: bool) -> list[socket.socket]:
    """Listening sockets for every address ``host`` stands for (one, unless a name has several)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            if port == 0 and sockets:
                # One port for all the addresses: the one the kernel picked for the first.
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                # Else "::" would take the IPv4 port too and the IPv4 address would fail to bind.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Listener:
    """Listens on ``host``:``port`` and gives each accepted connection a protocol from ``factory``."""

    def __init__(
        self, factory: Callable[[], asyncio.BaseProtocol], host: str, port: int, *, backlog: int,
        reuse_port: bool = False, max_connections: int | None = None,
        open_connections: Callable[[], int] = lambda: 0,
    ) -> None:  # fmt: skip
        """``open_connections`` counts the connections the protocols still hold (the listener does
        not see them close); with ``max_connections``, no more than that are open at once."""
        self._factory = factory
        self._host, self._port = host, port
        self._backlog = backlog
        self._reuse_port = reuse_port
        self._max_connections = max_connections
        self._open_connections = open_connections
        self._limit_logged_at = -_LIMIT_LOG_EVERY_S
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: list[socket.socket] = []
        self._handing_over: set[asyncio.Task[None]] = set()  # strong references until done
        self._paused: dict[socket.socket, asyncio.TimerHandle] = {}
        self.accepted = 0  # connections accepted so far
        self.limit_reached = 0  # times accepting came to max_connections and paused
        self._limited = False

    @property
    def port(self) -> int:
        """The bound port (the one the kernel picked when 0 was asked for)."""
        return int(self._sockets[0].getsockname()[1]) if self._sockets else self._port

    def start(self) -> None:
        """Bind and listen; raises ListenError."""
        self._loop = asyncio.get_running_loop()
        try:
            self._sockets = _bind(self._host, self._port, self._backlog, self._reuse_port)
        except OSError as exc:  # socket.gaierror included
            raise ListenError(f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}") from exc
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        """Stop accepting; connections already accepted are left to their protocols."""
        for handle in self._paused.values():
            handle.cancel()
        self._paused.clear()
        for sock in self._sockets:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = []

    @property
    def open(self) -> int:
        """Connections open: held by their protocols, or accepted and being handed over."""
        return self._open_connections() + len(self._handing_over)

    def _accept(self, sock: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        budget = self._backlog
        if self._max_connections is not None:
            room = self._max_connections - self.open
            if room <= 0:
                self._at_limit(loop, sock)
                return
            self._limited = False
            budget = min(budget, room)
        for _ in range(budget):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # the queue is empty
            except ConnectionAbortedError:
                continue  # the client gave up while queued
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                log.warning("cannot accept connections for %.0f s: %s", _PAUSE_S, exc)
                self._pause(loop, sock, _PAUSE_S)
                return
            conn.setblocking(False)
            self.accepted += 1
            task = loop.create_task(self._hand_over(loop, conn))
            self._handing_over.add(task)
            task.add_done_callback(self._handing_over.discard)

    async def _hand_over(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(self._factory, conn)
        except (OSError, RuntimeError) as exc:
            # A client that reset the connection at once, or a loop closing: nothing to answer.
            log.debug("dropped an accepted connection: %s", exc)
            with contextlib.suppress(OSError):
                conn.close()

    def _at_limit(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        if not self._limited:  # counted once per stay at the limit, not at every look
            self._limited = True
            self.limit_reached += 1
        now = time.monotonic()
        if now - self._limit_logged_at >= _LIMIT_LOG_EVERY_S:
            self._limit_logged_at = now
            log.warning(
                "%d connections open, the most allowed (GATEWAY_MAX_CONNECTIONS): new ones wait to be "
                "accepted until some close (logged at most once a minute)", self._max_connections,
            )  # fmt: skip
        self._pause(loop, sock, _LIMIT_POLL_S)

    def _pause(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, seconds: float) -> None:
        loop.remove_reader(sock.fileno())
        self._paused[sock] = loop.call_later(seconds, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        del self._paused[sock]
        if self._loop is not None:
            self._loop.add_reader(sock.fileno(), self._accept, sock)
