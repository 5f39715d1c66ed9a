"""An operator finds a broken connection on the ops console, in a real browser (Debian's
chromium, driven by Playwright): accounts linked through the real consent flow, one grant
revoked at the provider, the connection turning ``reauth_required`` through the real sync and
token path, then the console's login, overview, search, connection page and a forced resync.
Screenshots go to ``test-artifacts/ops-*.png``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import SecretStr

from chronapilot.common.runtime import RUNTIME
from chronapilot.common.settings import OpsSettings, ServiceSettings, Settings
from chronapilot.devstack.processes import free_port
from chronapilot.ops.console.app import create_app as create_console

from browser_harness import shot
from helpers import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TOKEN = "ops-e2e-token-7f3a9c"


@pytest.fixture
async def console(api, worker) -> AsyncIterator[str]:
    """The console in this process on the API's database and topics, outside development (so
    behind its token), scraping the running sync worker's ``/metrics`` for its charts."""
    worker_port = worker[RUNTIME].settings.service.sync_worker_port
    port = free_port()
    base = api.settings
    settings = Settings(
        env=base.env,
        run_dir=base.run_dir,
        mongo=base.mongo,
        kafka=base.kafka,
        providers=base.providers,
        service=ServiceSettings(ops_port=port, ops_token=SecretStr(TOKEN), startup_timeout_s=20),
        ops=OpsSettings(
            scrape_targets=f"sync-worker=http://127.0.0.1:{worker_port}/metrics",
            sample_interval_s=1.0,
            gauges_interval_s=1.0,
        ),
    )
    runner = web.AppRunner(create_console(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def connection(browser, connection_id: str) -> dict:
    async with browser.http.get(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    ) as response:
        assert response.status == 200
        return dict(await response.json())


async def test_an_operator_finds_a_revoked_grant_on_the_console_and_resyncs_a_healthy_one(
    chromium, browser, sandbox, console
):
    broken = await browser.link_and_sync("google")
    healthy = await browser.link_and_sync("microsoft")
    google = sandbox.accounts["google"].email

    # the user removes the app's access at Google; the next sync finds the grant gone
    async with browser.http.post(
        f"{sandbox.urls['google']}/_admin/grants/revoke", json={"email": google}
    ) as response:
        assert response.status == 200, await response.text()
    async with browser.http.post(
        f"{browser.api.url}/v1/connections/{broken}/refresh", headers=browser.api.headers()
    ) as response:
        assert response.status == 202, await response.text()

    async def reauth_required() -> bool:
        shown = await connection(browser, broken)
        return shown["status"] == "error" and (shown.get("error") or {}).get("code") == "reauth_required"

    await eventually(reauth_required, timeout_s=30)

    page = await chromium.new_page()
    await page.goto(console)
    await page.wait_for_url("**/login")
    await page.get_by_label("Ops token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{console}/")
    errors = page.get_by_role("region", name="Connections in error")
    assert broken in await errors.inner_text()
    assert "reauth_required" in await errors.inner_text()
    failures = await page.get_by_role("region", name="Failures in the last hour").inner_text()
    assert "reauth_required" in failures
    await shot(page, "ops-overview")

    await page.get_by_placeholder("con_… or account e-mail").fill(google.upper())
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url(f"{console}/connections/{broken}")
    assert await page.locator("#status").inner_text() == "error"
    assert await page.locator("#error-code").inner_text() == "reauth_required"
    history = await page.locator("#history").inner_text()
    assert "activated" in history and "reauth_required" in history
    await shot(page, "ops-connection")

    await page.get_by_placeholder("con_… or account e-mail").fill(healthy)
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url(f"{console}/connections/{healthy}")
    assert await page.locator("#status").inner_text() == "active"
    before = (await connection(browser, healthy))["last_synced_at"]
    await page.get_by_role("button", name="Force resync").click()
    await page.wait_for_url(f"{console}/connections/{healthy}?**")
    assert "A full sync was requested." in await page.locator("#notice").inner_text()
    await shot(page, "ops-resync")

    async def synced_again() -> bool:
        return (await connection(browser, healthy))["last_synced_at"] != before

    await eventually(synced_again, timeout_s=30)
