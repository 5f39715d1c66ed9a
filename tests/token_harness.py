"""Token-health tests' shared pieces: a sandbox with short-lived access tokens, linking accounts
through the real consent flow, a TokenService on the test's database, emulator admin calls."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from chronapilot.common.backoff import Backoff
from chronapilot.common.clock import SystemClock
from chronapilot.common.providers.registry import build_providers
from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.settings import TokenSettings
from chronapilot.common.tokens import TokenService
from chronapilot.sandbox.launcher import Sandbox, SandboxConfig

from api_harness import Api, Browser, start_api

#: The token endpoint of each OAuth emulator, as its counters and faults name it.
TOKEN_ROUTES = {"google": "/token", "microsoft": "/{tenant}/oauth2/v2.0/token"}


def short_token_sandbox(ttl_s: int = 60) -> Sandbox:
    return Sandbox(
        SandboxConfig(google_port=0, microsoft_port=0, radicale_port=0, access_token_ttl=ttl_s, seed=7007)
    )


@dataclass
class Linked:
    """An API on the test's database, a browser to link accounts, and the API's runtime."""

    api: Api
    browser: Browser
    sandbox: Sandbox
    http: aiohttp.ClientSession

    @property
    def runtime(self) -> Runtime:
        return self.api.app[RUNTIME]

    @property
    def db(self) -> Any:
        return self.runtime.store.db

    async def link(self, provider: str, user_id: str | None = None) -> str:
        user_id = user_id or await self.browser.create_user(f"ext-{provider}")
        returned = await self.browser.connect(provider, user_id)
        return returned["connection_id"][0]

    def token_service(self, **options: Any) -> TokenService:
        defaults: dict[str, Any] = {
            "refresh_margin_s": 30,
            "min_validity_s": 5,
            "lease_s": 10,
            "failure_threshold": 3,
            "backoff": Backoff(base_s=0.2, cap_s=1.0),
        }
        return TokenService(
            db=self.runtime.store,
            cipher=self.runtime.cipher,
            providers=build_providers(self.api.settings.providers, self.http),
            clock=SystemClock(),
            emit=self.runtime,
            **(defaults | options),
        )

    def runtime_with_providers(self, **token_settings: Any) -> Runtime:
        """A runtime like the refresher's: this database, the providers, token settings."""
        settings = self.api.settings.model_copy(update={"tokens": TokenSettings(**token_settings)})
        return dataclasses.replace(self.runtime, settings=settings)

    async def connection(self, connection_id: str) -> dict[str, Any]:
        doc = await self.db.connections.find_one({"_id": connection_id})
        assert doc is not None
        return dict(doc)

    async def credentials(self, connection_id: str) -> dict[str, Any] | None:
        return await self.db.credentials.find_one({"_id": connection_id})

    async def make_due(self, connection_id: str, *, in_s: float = 0) -> None:
        """Move the stored expiry so the token is due now (as time passing would)."""
        await self.db.credentials.update_one(
            {"_id": connection_id},
            {"$set": {"access_expires_at": datetime.now(UTC) + timedelta(seconds=in_s)}},
        )

    async def events(self, event_type: str, connection_id: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"envelope.type": event_type}
        if connection_id:
            query["envelope.connection_id"] = connection_id
        return [r["envelope"] async for r in self.db.outbox.find(query).sort("_id", 1)]

    async def admin(self, provider: str, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.sandbox.urls[provider]}/_admin/{path}"
        async with self.http.request(method, url, json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json() if response.content_type == "application/json" else None

    async def counters(self, provider: str) -> dict[str, Any]:
        return dict(await self.admin(provider, "GET", "counters"))

    async def reset_counters(self, provider: str) -> None:
        await self.admin(provider, "POST", "counters/reset")

    async def revoke_grant(self, provider: str) -> None:
        email = self.sandbox.accounts[provider].email
        body = {"email": email} if provider == "google" else {"user": email}
        await self.admin(provider, "POST", "grants/revoke", body)


def token_requests(counters: dict[str, Any], provider: str) -> int:
    return int(counters["requests"].get(f"POST {TOKEN_ROUTES[provider]}", 0))


@asynccontextmanager
async def linked(isolated: Any, sandbox: Sandbox) -> AsyncIterator[Linked]:
    runner: web.AppRunner
    runner, api = await start_api(isolated, sandbox)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            yield Linked(api, Browser(http, api, sandbox), sandbox, http)
    finally:
        await runner.cleanup()
