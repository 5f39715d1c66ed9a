"""The gateway's routes (besides ``/healthz`` and ``/readyz``; ``/metrics`` is on the internal listener).

``POST /webhooks/{provider}`` receives notifications (and Microsoft's validation handshake);
``POST /webhooks/{provider}/lifecycle`` receives Microsoft's lifecycle notifications (and its
handshake). ``{provider}`` is a configured provider with a push component (``provider.push``):
``google`` or ``microsoft``; anything else answers 404.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from chronapilot.webhook_gateway.receive import Receiver


def add_routes(app: web.Application, receiver: Callable[[], Receiver]) -> None:
    """Route notifications to ``receiver()`` (built when the app starts)."""

    async def receive(request: web.Request) -> web.Response:
        return await receiver().handle(request)

    app.router.add_post("/webhooks/{provider}", receive)
    app.router.add_post("/webhooks/{provider}/lifecycle", receive)
