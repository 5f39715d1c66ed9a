"""Server-rendered pages (jinja2, autoescaped, as the API's hosted pages are), sent with a strict
Content-Security-Policy: no script at all, styles only from the console's own stylesheet."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("chronapilot.ops.console", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def when(value: datetime | None, now: datetime | None = None) -> str:
    """``2026-03-02 09:00:00 UTC (5m ago)`` (``in 5m`` for a time to come), or ``never``."""
    if value is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    relative = f"{age(seconds)} ago" if seconds >= 0 else f"in {age(-seconds)}"
    return f"{value:%Y-%m-%d %H:%M:%S} UTC ({relative})"


def age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


_ENV.filters["when"] = when
_ENV.filters["age"] = age


def render_page(template: str, *, status: int = 200, **context: Any) -> web.Response:
    html = _ENV.get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)
