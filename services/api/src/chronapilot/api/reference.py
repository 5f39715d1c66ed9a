"""``/docs``: the API reference a developer reads and tries, self-hosted.

Scalar's standalone browser bundle (``@scalar/api-reference``, pinned in tools/scalar and
shipped here as package data, so an image built from the Python packages serves it without npm)
renders ``/v1/openapi.json``. ``static/docs.js`` loads and configures it: no telemetry, no
fonts, no proxy, no agent, every external URL pointed at this origin, Zod's eval probe off, and
try-it sending requests to this origin with the caller's API key as a Bearer token.

The page's Content-Security-Policy allows nothing but this origin: scripts from ``'self'`` only
(no inline script, no eval), fetches to ``'self'``, no fonts at all. One exception:
``style-src 'unsafe-inline'``, because Scalar injects ``<style>`` elements at run time (its
theme, its components' styles) without a nonce; the other pages have the same allowance.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from aiohttp import web

from chronapilot.api.views import SECURITY_HEADERS, render_template

STATIC = Path(str(files("chronapilot.api") / "static"))
SCALAR_VERSION = (STATIC / "scalar" / "VERSION").read_text().strip()
ASSETS = {
    f"scalar-{SCALAR_VERSION}.js": STATIC / "scalar" / "standalone.js",
    "docs.js": STATIC / "docs.js",
}


DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


async def docs_page(request: web.Request) -> web.Response:
    html = render_template("docs.html", scalar=f"scalar-{SCALAR_VERSION}.js")
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": DOCS_POLICY}
    return web.Response(text=html, content_type="text/html", headers=headers)


async def docs_asset(request: web.Request) -> web.FileResponse:
    path = ASSETS.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    # The bundle's name carries its version, so it may be cached; docs.js is small and follows releases.
    cache = "public, max-age=31536000, immutable" if path.name == "standalone.js" else "no-cache"
    headers = {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff",
    }
    return web.FileResponse(path, headers=headers)
