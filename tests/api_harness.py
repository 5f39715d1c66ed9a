"""Driving the API against the provider sandbox: an in-process API server on a free port, an
application with a key, and a browser-like client that walks the consent flows."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
from aiohttp import web

from chronapilot.api.app import create_app
from chronapilot.common.clock import SystemClock
from chronapilot.common.health import INTERNAL_LISTENER, add_internal_listener
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.settings import (
    ProviderSettings,
    ServiceSettings,
    Settings,
    SyncSettings,
    TokenSettings,
    WebhookSettings,
)
from chronapilot.common.tenancy import create_application
from chronapilot.devstack.processes import free_port
from chronapilot.sandbox.launcher import Sandbox
from chronapilot.sandbox.shared.consent import read_consent_form
from chronapilot.sync_worker.app import create_app as create_worker

from helpers import RETURN_PREFIX, eventually


def provider_settings(sandbox: Sandbox) -> ProviderSettings:
    values = {
        key.removeprefix("CHRONAPILOT_").lower(): value
        for key, value in sandbox.env().items()
        if not key.startswith("CHRONAPILOT_DEMO_")
    }
    return ProviderSettings(**values)


async def register_callbacks(sandbox: Sandbox, api_base_url: str) -> None:
    """Register this API's callback with the Microsoft sandbox app (its defaults cover :8080)."""
    microsoft = sandbox.urls["microsoft"]
    client_id = sandbox.oauth_clients["microsoft"].client_id
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{microsoft}/_admin/apps") as response:
            apps = {a["client_id"]: a for a in await response.json()}
        uris = [*apps[client_id]["redirect_uris"], f"{api_base_url}/oauth/microsoft/callback"]
        async with http.patch(
            f"{microsoft}/_admin/apps/{client_id}", json={"redirect_uris": uris}
        ) as response:
            assert response.status == 200, await response.text()


@dataclass
class Api:
    url: str
    settings: Settings
    app: web.Application
    key: str
    application_id: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    @property
    def internal_url(self) -> str:
        """The internal listener (``/metrics``, ``/healthz``, ``/readyz``), as ``run_service`` adds it."""
        return f"http://127.0.0.1:{self.app[INTERNAL_LISTENER].port}"


async def start_api(isolated, sandbox: Sandbox) -> tuple[web.AppRunner, Api]:
    port = free_port()
    base = isolated.settings()
    settings = Settings(
        env=base.env,
        run_dir=base.run_dir,
        mongo=base.mongo,
        kafka=base.kafka,
        providers=provider_settings(sandbox),
        service=ServiceSettings(api_port=port, startup_timeout_s=20),
        # customer webhooks go to receivers on 127.0.0.1 in these tests
        webhooks=WebhookSettings(webhook_allow_private_destinations=True),
    )
    app = create_app(settings)
    add_internal_listener(app, "127.0.0.1", 0)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await register_callbacks(sandbox, settings.api_base_url)
    application, key = await create_application(
        app[RUNTIME].repos.applications,
        name="test app",
        return_url_prefixes=[RETURN_PREFIX, f"{settings.api_base_url}/demo/"],
        live=False,
        clock=SystemClock(),
    )
    return runner, Api(f"http://127.0.0.1:{port}", settings, app, key, application.id)


class Browser:
    """Walks consent like an end-user's browser: follows pages, fills forms, clicks."""

    def __init__(self, http: aiohttp.ClientSession, api: Api, sandbox: Sandbox) -> None:
        self.http, self.api, self.sandbox = http, api, sandbox

    async def create_user(self, external_id: str = "ext-1") -> str:
        async with self.http.post(
            f"{self.api.url}/v1/users", json={"external_id": external_id}, headers=self.api.headers()
        ) as response:
            assert response.status == 201, await response.text()
            return str((await response.json())["id"])

    async def start(self, provider: str, user_id: str, **extra: object) -> dict:
        body = {
            "provider": provider,
            "user_id": user_id,
            "return_url": RETURN_PREFIX + "done?from=test",
            **extra,
        }
        async with self.http.post(
            f"{self.api.url}/v1/connections/start", json=body, headers=self.api.headers()
        ) as response:
            assert response.status == 201, await response.text()
            return dict(await response.json())

    async def consent(
        self, redirect_url: str, provider: str, decision: str = "allow", password: str | None = None
    ) -> str:
        """Follow ``redirect_url`` through consent; return where the browser lands at the end."""
        account = self.sandbox.accounts[provider]
        async with self.http.get(redirect_url) as page:
            html = await page.text()
            assert page.status == 200, html
            page_url = str(page.url)
        if provider == "icloud":
            token = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert token is not None
            form = {
                "csrf_token": token.group(1),
                "email": account.email,
                "password": password or account.password,
            }
            async with self.http.post(page_url, data=form, allow_redirects=False) as response:
                if response.status != 303:
                    return f"page:{response.status}:{await response.text()}"
                return response.headers["Location"]
        form = read_consent_form(html)
        body = form.submission(decision, email=account.email, password=password or account.password)
        async with self.http.post(
            urljoin(page_url, form.action), data=body, allow_redirects=False
        ) as response:
            assert response.status in (302, 303), await response.text()
            callback = response.headers["Location"]
        async with self.http.get(callback, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            return response.headers["Location"]

    async def connect(self, provider: str, user_id: str) -> dict[str, list[str]]:
        started = await self.start(provider, user_id, state=f"st-{provider}")
        landed = await self.consent(started["redirect_url"], provider)
        assert landed.startswith(RETURN_PREFIX + "done?from=test"), landed
        return parse_qs(urlsplit(landed).query)

    async def link_and_sync(self, provider: str, user_id: str | None = None, *, timeout_s: float = 60) -> str:
        """Link ``provider`` for ``user_id`` (a new user when None) and wait until the
        connection's first sync completed (a worker must run); the connection id."""
        user_id = user_id or await self.create_user()
        connection_id = (await self.connect(provider, user_id))["connection_id"][0]
        db = self.api.app[RUNTIME].store.db

        async def synced() -> bool:
            connection = await db.connections.find_one({"_id": connection_id})
            return connection is not None and connection["last_synced_at"] is not None

        await eventually(synced, timeout_s=timeout_s)
        return connection_id


@asynccontextmanager
async def running_service(
    api: Api, create: Callable[[Settings], web.Application], port_field: str, **sections: Any
) -> AsyncIterator[web.Application]:
    """A service (``create``'s app) in this process on the API's database, topics and providers,
    on a free port (``port_field`` of the service settings); ``sections`` replace settings
    sections (``sync=SyncSettings(...)``)."""
    base = api.settings
    settings = Settings(
        env=base.env,
        run_dir=base.run_dir,
        mongo=base.mongo,
        kafka=base.kafka,
        providers=base.providers,
        service=base.service.model_copy(update={port_field: free_port()}),
        **sections,
    )
    app = create(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", getattr(settings.service, port_field)).start()
    try:
        yield app
    finally:
        await runner.cleanup()


@asynccontextmanager
async def running_worker(api: Api, **sync: Any) -> AsyncIterator[web.Application]:
    """A sync worker in this process, on the API's database and topics (polling off unless
    ``sync`` turns it on)."""
    sync_settings = SyncSettings(**{"polling_enabled": False, "backoff_s": 0.05, **sync})
    async with running_service(api, create_worker, "sync_worker_port", sync=sync_settings) as app:
        yield app


@asynccontextmanager
async def running_refresher(api: Api, **tokens: Any) -> AsyncIterator[web.Application]:
    """A token refresher in this process (its refresh loop and its ``connections.v1``
    consumer) on the API's database and topics; ``tokens`` override token settings."""
    from chronapilot.token_refresher.app import create_app as create_refresher

    token_settings = TokenSettings(**tokens)
    async with running_service(api, create_refresher, "token_refresher_port", tokens=token_settings) as app:
        yield app
