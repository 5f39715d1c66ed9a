"""Shared fixtures of the sandbox tests (generic ones first, then one per emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from google_harness import GoogleSandbox, WebhookReceiver, start_google, start_webhook_receiver


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """An HTTP server recording the requests it gets (``receiver.url``)."""
    receiver, server = await start_webhook_receiver()
    yield receiver
    if receiver.gate is not None:
        receiver.gate.set()
    await server.runner.cleanup()


@pytest.fixture
async def google() -> AsyncIterator[GoogleSandbox]:
    """A Google emulator seeded with the demo account (seed 7), served on a free port."""
    sandbox, server = await start_google()
    yield sandbox
    await sandbox.http.close()
    await server.runner.cleanup()


@pytest.fixture
async def google_token(google: GoogleSandbox) -> str:
    """An access token of the demo account with calendar read-write."""
    token = await google.sign_in()
    return str(token["access_token"])
