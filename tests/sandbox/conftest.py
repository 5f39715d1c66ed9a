"""Shared fixtures of the sandbox tests (generic ones first, then one per emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from chronapilot.sandbox.google import build_app
from google_harness import GoogleSandbox, WebhookReceiver, serve_app


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """An HTTP server recording the requests it gets (``receiver.url``)."""
    receiver = WebhookReceiver()

    def build(base_url: str) -> web.Application:
        receiver.url = f"{base_url}/hooks/notify"
        app = web.Application()
        app.router.add_post("/hooks/notify", receiver.handle)
        return app

    server = await serve_app(build)
    yield receiver
    if receiver.gate is not None:
        receiver.gate.set()
    await server.runner.cleanup()


@pytest.fixture
async def google() -> AsyncIterator[GoogleSandbox]:
    """A Google emulator seeded with the demo account (seed 7), served on a free port."""
    server = await serve_app(lambda base_url: build_app(base_url=base_url, seed=7))
    async with aiohttp.ClientSession() as http:
        yield GoogleSandbox(server.base_url, server.app, http)
    await server.runner.cleanup()


@pytest.fixture
async def google_token(google: GoogleSandbox) -> str:
    """An access token of the demo account with calendar read-write."""
    token = await google.sign_in()
    return str(token["access_token"])
