"""Fixtures for driving the API against the provider sandbox (see api_harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser as PlaywrightBrowser

from chronapilot.sandbox.launcher import Sandbox, SandboxConfig

from api_harness import Api, Browser, running_worker, start_api
from browser_harness import launched_chromium


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
async def worker(api: Api) -> AsyncIterator[web.Application]:
    async with running_worker(api) as app:
        yield app


@pytest.fixture
async def chromium() -> AsyncIterator[PlaywrightBrowser]:
    """Debian's chromium, headless, for one test (tests/browser_harness.py)."""
    async with launched_chromium() as launched:
        yield launched
