"""Accepting connections: every connection waiting in the listen queue, each time the socket is ready.

uvloop's libuv accepts one connection per event-loop iteration (libuv 1.45, "don't accept()
connections in a loop"). A gateway under load spends tens of milliseconds in an iteration, so a
burst of new connections waited in the kernel's queue for seconds: 1,000 clients connecting at once
to a busy gateway, 100-375 of them left in the queue, drained ~30 a second, their first answers up
to ~10 s late, while the gateway's own latency histogram had every request under 0.1 s (see README,
Performance). asyncio's own loop accepts up to its backlog per iteration; this does the same on
any loop, and hands each connection to the loop with ``connect_accepted_socket``.

Bounded: at most ``backlog`` connections per readiness event. When the process runs out of file
descriptors or kernel memory, accepting pauses for a second, as asyncio does, instead of spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

_PAUSE_S = 1.0
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


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
        reuse_port: bool = False,
    ) -> None:  # fmt: skip
        self._factory = factory
        self._host, self._port = host, port
        self._backlog = backlog
        self._reuse_port = reuse_port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: list[socket.socket] = []
        self._handing_over: set[asyncio.Task[None]] = set()  # strong references until done
        self._paused: dict[socket.socket, asyncio.TimerHandle] = {}
        self.accepted = 0  # connections accepted so far

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

    def _accept(self, sock: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        for _ in range(self._backlog):
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
                loop.remove_reader(sock.fileno())
                self._paused[sock] = loop.call_later(_PAUSE_S, self._resume, sock)
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

    def _resume(self, sock: socket.socket) -> None:
        del self._paused[sock]
        if self._loop is not None:
            self._loop.add_reader(sock.fileno(), self._accept, sock)
