"""Customer webhooks under test: a receiver that records what it gets and answers as told, and
endpoints written the way the API writes them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from chronapilot.common.clock import isoformat_z
from chronapilot.common.crypto import TokenCipher
from chronapilot.common.ids import new_id
from chronapilot.common.store.repositories import Repositories
from chronapilot.common.store.webhook_deliveries import new_delivery
from chronapilot.common.webhooks.signing import new_secret, seal
from chronapilot.devstack.processes import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    #: when it arrived (wall clock: comparable with timestamps other processes wrote)
    wall_at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> dict[str, Any]:
        """The payload, verified by the ``standardwebhooks`` library (raises if it is not)."""
        return dict(Webhook(secret).verify(self.body, self.headers))


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records each request and answers with the next of
    ``answers`` (status codes; 200 once they run out); ``hang`` makes it never answer."""

    answers: list[int] = field(default_factory=list)
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(dict(request.headers), body, time.time()))
        self.arrived.set()
        if self.hang:
            await asyncio.sleep(3600)
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status < 300 else "nope")

    def count(self, event_type: str) -> int:
        """How many requests of ``event_type`` arrived (unverified: for waiting)."""
        return sum(1 for r in self.received if json.loads(r.body).get("type") == event_type)

    def payloads(self, secret: str) -> list[dict[str, Any]]:
        return [r.verified(secret) for r in self.received]


@asynccontextmanager
async def receiving(receiver: Receiver | None = None) -> AsyncIterator[Receiver]:
    receiver = receiver or Receiver()
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    receiver.port = free_port()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def add_endpoint(
    repos: Repositories,
    cipher: TokenCipher,
    application_id: str,
    url: str,
    *,
    events: list[str] | None = None,
    now: datetime,
) -> tuple[str, str]:
    """An enabled endpoint as the API stores it; returns (its id, its secret)."""
    endpoint_id = new_id("we")
    secret = new_secret()
    await repos.webhook_endpoints.insert(
        {
            "_id": endpoint_id,
            "application_id": application_id,
            "url": url,
            "description": None,
            "enabled_events": events or ["*"],
            "disabled": False,
            "disabled_reason": None,
            "secrets": [{"secret": seal(cipher, endpoint_id, secret), "created_at": now, "expires_at": None}],
            "failing_since": None,
            "created_at": now,
            "updated_at": now,
        }
    )
    return endpoint_id, secret


async def add_ping(repos: Repositories, application_id: str, endpoint_id: str, *, now: datetime) -> str:
    """A test ping due now (as ``POST /v1/webhook_endpoints/{id}/test`` makes it)."""
    delivery = new_delivery(
        application_id=application_id,
        endpoint_id=endpoint_id,
        event_type="ping",
        connection_id=None,
        payload={
            "type": "ping",
            "timestamp": isoformat_z(now),
            "data": {
                "object": {"object": "ping", "endpoint_id": endpoint_id},
                "updated_at": isoformat_z(now),
                "sequence": 0,
            },
        },
        source_id="ping/" + new_id("x"),
        now=now,
        next_attempt_at=now,
    )
    await repos.webhook_deliveries.create_many([delivery])
    return str(delivery["_id"])


def body_of(received: Received) -> dict[str, Any]:
    return dict(json.loads(received.body))
