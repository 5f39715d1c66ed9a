"""Server-rendered pages (jinja2, autoescaped): the hosted credential form, error pages, the
shell of the docs page."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("chronapilot.api", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def render_template(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


def render_page(template: str, *, status: int = 200, **context: Any) -> web.Response:
    html = render_template(template, **context)
    return web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)
