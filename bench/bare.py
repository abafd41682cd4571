"""The HTTP ceiling: a bare aiohttp POST handler (parse the body with orjson, answer JSON).

``python -m bench.bare PORT [TOPIC]``; uses uvloop when installed, as the gateway does.

With a topic, each request also publishes one record to it through the gateway's own publisher
(``gateway.app.make_publisher``, configured from the environment as the gateway is: acks=all,
idempotent, lz4, a 0.2 ms linger), and the answer waits for Kafka's acknowledgement. The record is
the one the gateway makes of the bench's single event (``bench.payloads.single_record``: the same
value, key and headers), made once: Kafka gets the same bytes as from the gateway, and nothing of
the gateway's own work per request is done. That is what acknowledging only after Kafka costs by
itself on this machine (the client's work and the broker's, on the same cores): a bound on the
single-event requests/s of any gateway that does so.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from ingest_core.publish.base import Publisher

# The gateway's modules are imported only to publish, so that the bare handler loads nothing of it.
PUBLISHER: web.AppKey[Publisher] = web.AppKey("bench.bare.publisher")


async def handle(request: web.Request) -> web.Response:
    doc = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps({"ok": True, "n": len(doc)}), content_type="application/json")


def publishing_to(topic: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    from bench.payloads import single_record

    record = single_record()

    async def handle_publishing(request: web.Request) -> web.Response:
        raw = await request.read()
        doc = orjson.loads(raw)
        await request.app[PUBLISHER].publish(topic, [record])
        return web.Response(body=orjson.dumps({"ok": True, "n": len(doc)}), content_type="application/json")

    return handle_publishing


async def _publisher(app: web.Application) -> AsyncIterator[None]:
    from gateway.app import make_publisher
    from gateway.settings import GatewaySettings

    publisher = make_publisher(GatewaySettings.from_env(os.environ))
    await publisher.start()
    app[PUBLISHER] = publisher
    yield
    await publisher.close()


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = web.Application(client_max_size=10 * 1024 * 1024)
    if sys.argv[2:]:
        app.cleanup_ctx.append(_publisher)
        app.router.add_post("/{tail:.*}", publishing_to(sys.argv[2]))
    else:
        app.router.add_post("/{tail:.*}", handle)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda _m: None)


if __name__ == "__main__":
    main()
