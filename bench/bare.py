"""The HTTP ceiling: a bare aiohttp POST handler (parse the body with orjson, answer JSON).

``python -m bench.bare PORT``; uses uvloop when installed, as the gateway does.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    doc = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps({"ok": True, "n": len(doc)}), content_type="application/json")


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", handle)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda _m: None)


if __name__ == "__main__":
    main()
