"""Fixtures for driving the API against the provider sandbox (see api_harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from chronapilot.common.settings import Settings, SyncSettings
from chronapilot.devstack.processes import free_port
from chronapilot.sandbox.launcher import Sandbox, SandboxConfig
from chronapilot.sync_worker.app import create_app as create_worker

from api_harness import Api, Browser, start_api


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(google_port=0, microsoft_port=0, radicale_port=0, seed=20261125)
    async with Sandbox(config) as started:
        yield started


@pytest.fixture
async def api(isolated, sandbox) -> AsyncIterator[Api]:
    runner, started = await start_api(isolated, sandbox)
    try:
        yield started
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
def browser(http, api, sandbox) -> Browser:
    return Browser(http, api, sandbox)


@pytest.fixture
async def worker(api) -> AsyncIterator[web.Application]:
    base = api.settings
    settings = Settings(
        env=base.env,
        run_dir=base.run_dir,
        mongo=base.mongo,
        kafka=base.kafka,
        providers=base.providers,
        service=base.service.model_copy(update={"sync_worker_port": free_port()}),
        sync=SyncSettings(polling_enabled=False, backoff_s=0.05),
    )
    app = create_worker(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.service.sync_worker_port).start()
    try:
        yield app
    finally:
        await runner.cleanup()
