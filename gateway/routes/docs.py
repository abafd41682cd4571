"""``/openapi.json`` (the OpenAPI 3.1 document, ``gateway.openapi``) and ``/docs``: a page rendering
it with Swagger UI, served from the ``swagger-ui-py`` package's files (no CDN)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
from aiohttp import web

from gateway import openapi
from gateway.handling import Routes

# The viewer's files this page uses, served by name from the package (nothing else is).
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
PAGE = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ingest-gateway API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="api"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#api", deepLinking: true});</script>
</body>
</html>
"""


def viewer_dir() -> Path:
    """The Swagger UI files of the ``swagger-ui-py`` package, found without importing it."""
    spec = importlib.util.find_spec("swagger_ui")
    assert spec is not None, "swagger-ui-py is a dependency"
    assert spec.origin is not None
    return Path(spec.origin).parent / "static"


def add_routes(routes: Routes) -> None:
    document = orjson.dumps(openapi.build())
    assets = {name: (viewer_dir() / name).read_bytes() for name in ASSETS}

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    async def page(_request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets:
            raise web.HTTPNotFound()
        return web.Response(
            body=assets[name], content_type=ASSETS[name], headers={"Cache-Control": "public, max-age=3600"}
        )

    routes.add("/openapi.json", ["GET", "HEAD"], openapi_json)
    routes.add("/docs", ["GET", "HEAD"], page)
    routes.add("/docs/static/{name}", ["GET", "HEAD"], asset)
