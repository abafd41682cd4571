"""The gateway's listener on real sockets, on asyncio's loop and on uvloop's: a burst of waiting
connections is accepted in one go (uvloop's own servers take one per loop iteration), each gets a
working protocol, closing stops accepting, and no more than the most allowed are open at once
(the rest wait in the listen queue until some close). Running out of file descriptors pauses accepting
instead of spinning (a unit test with a socket that refuses)."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest
import uvloop

from gateway import listener as listener_module
from gateway.listener import Listener, ListenError

pytestmark = pytest.mark.integration

BURST = 300


class Echo(asyncio.Protocol):
    """Counts connections and echoes what it reads, so that a client can tell it is served."""

    made = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Echo.made += 1
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Tracked(Echo):
    """Echo that also counts the connections open, as aiohttp's server does for the gateway."""

    open = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        Tracked.open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        Tracked.open -= 1


def run_on(loop_factory: Callable[[], asyncio.AbstractEventLoop], main: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)


async def a_burst_is_accepted_at_once() -> None:
    Echo.made = 0
    listener = Listener(Echo, "127.0.0.1", 0, backlog=1024)
    listener.start()
    clients: list[socket.socket] = []
    try:
        # Blocking connects complete in the kernel without the loop's help: all BURST wait in the
        # listening socket's queue before the loop runs again.
        for _ in range(BURST):
            clients.append(socket.create_connection(("127.0.0.1", listener.port), timeout=5))
        # A handful of loop iterations, not time: one readiness event accepts them all, the next
        # hand them to the loop. Accepting one per iteration would have left all but a few queued.
        for _ in range(10):
            await asyncio.sleep(0)
        assert listener.accepted == BURST
        assert Echo.made == BURST
        # Each is served: its bytes come back.
        loop = asyncio.get_running_loop()
        for i in (0, BURST // 2, BURST - 1):
            clients[i].setblocking(False)
            await loop.sock_sendall(clients[i], b"ping %d" % i)
            assert await asyncio.wait_for(loop.sock_recv(clients[i], 64), 5) == b"ping %d" % i
    finally:
        listener.close()
        for client in clients:
            client.close()
    # Closed: nothing listens on the port any more.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", listener.port), timeout=5).close()


def test_a_burst_is_accepted_at_once_on_uvloop() -> None:
    run_on(uvloop.new_event_loop, a_burst_is_accepted_at_once())


def test_a_burst_is_accepted_at_once_on_asyncio() -> None:
    run_on(asyncio.new_event_loop, a_burst_is_accepted_at_once())


async def listens_on_every_address_of_a_name() -> None:
    # "localhost" may stand for 127.0.0.1 and ::1: one port for both, whichever the kernel picked.
    listener = Listener(Echo, "localhost", 0, backlog=16)
    listener.start()
    try:
        families = {
            info[0] for info in socket.getaddrinfo("localhost", listener.port, type=socket.SOCK_STREAM)
        }
        for family in families:
            host = "127.0.0.1" if family == socket.AF_INET else "::1"
            with socket.create_connection((host, listener.port), timeout=5):
                pass
        for _ in range(10):
            await asyncio.sleep(0)
        assert listener.accepted == len(families)
    finally:
        listener.close()


def test_listens_on_every_address_of_a_name() -> None:
    run_on(uvloop.new_event_loop, listens_on_every_address_of_a_name())


def test_a_taken_port_fails_the_start() -> None:
    async def main() -> None:
        first = Listener(Echo, "127.0.0.1", 0, backlog=16)
        first.start()
        try:
            second = Listener(Echo, "127.0.0.1", first.port, backlog=16)
            with pytest.raises(
                ListenError, match=f"cannot listen on 127.0.0.1:{first.port}: Address already in use"
            ):
                second.start()
        finally:
            first.close()

    run_on(uvloop.new_event_loop, main())


class OutOfDescriptors(socket.socket):
    """A listening socket whose accept() fails as it does when the process has no descriptor left."""

    def accept(self) -> tuple[socket.socket, Any]:
        raise OSError(errno.EMFILE, "Too many open files")


def test_running_out_of_descriptors_pauses_accepting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listener_module, "_PAUSE_S", 0.05)

    async def main() -> None:
        sock = OutOfDescriptors(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        monkeypatch.setattr(listener_module, "_bind", lambda *_args: [sock])
        listener = Listener(Echo, "127.0.0.1", 0, backlog=16)
        calls = 0
        real_accept = listener._accept

        def counting(s: socket.socket) -> None:
            nonlocal calls
            calls += 1
            real_accept(s)

        monkeypatch.setattr(listener, "_accept", counting)
        listener.start()
        try:
            client = socket.create_connection(sock.getsockname(), timeout=5)  # makes it readable
            for _ in range(50):
                await asyncio.sleep(0)
            # Paused after the first failure: not called again on every iteration while readable.
            assert calls == 1
            await asyncio.sleep(0.2)
            # Resumed after the pause, failed again, paused again: a few calls, not thousands.
            assert 2 <= calls <= 6
            client.close()
        finally:
            listener.close()

    run_on(uvloop.new_event_loop, main())


async def at_most_max_connections_are_open() -> None:
    Echo.made, Tracked.open = 0, 0
    listener = Listener(
        Tracked, "127.0.0.1", 0, backlog=64, max_connections=3, open_connections=lambda: Tracked.open
    )
    listener.start()
    loop = asyncio.get_running_loop()
    clients: list[socket.socket] = []
    try:
        for _ in range(5):
            client = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
            client.setblocking(False)
            clients.append(client)
        await asyncio.sleep(0.2)  # ten looks at the limit: counted once
        assert (Echo.made, listener.open, listener.accepted, listener.limit_reached) == (3, 3, 3, 1)
        # The fourth waits in the listen queue: what it sends is not answered yet.
        await loop.sock_sendall(clients[3], b"queued")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop.sock_recv(clients[3], 64), 0.2)
        # One served connection closes: the first in the queue is let in, and served.
        clients[0].close()
        assert await asyncio.wait_for(loop.sock_recv(clients[3], 64), 5) == b"queued"
        assert (Echo.made, listener.open) == (4, 3)
        await asyncio.sleep(0.1)
        assert listener.limit_reached == 2  # at the limit again, a second time
    finally:
        listener.close()
        for client in clients:
            client.close()


def test_at_most_max_connections_are_open_on_uvloop() -> None:
    run_on(uvloop.new_event_loop, at_most_max_connections_are_open())


def test_at_most_max_connections_are_open_on_asyncio() -> None:
    run_on(asyncio.new_event_loop, at_most_max_connections_are_open())
