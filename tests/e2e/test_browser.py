"""A real browser (Debian's chromium, driven by Playwright) completes the iCloud form and an
OAuth consent by clicking, and lands on the return page with the new connection."""

from __future__ import annotations

import pytest

from browser_harness import shot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_the_icloud_form_is_completed_by_clicking(chromium, browser, sandbox):
    user_id = await browser.create_user()
    started = await browser.start(
        "icloud", user_id, state="from-chromium", return_url=f"{browser.api.url}/demo/return"
    )
    page = await chromium.new_page()
    await page.goto(started["redirect_url"])
    await shot(page, "icloud-form")
    account = sandbox.accounts["icloud"]
    await page.get_by_label("Apple Account e-mail").fill(account.email)
    await page.get_by_label("App-specific password").fill("wrong-wrong-wrong-wrong")
    await page.get_by_role("button", name="Connect calendar").click()
    await page.get_by_role("alert").wait_for()
    await shot(page, "icloud-form-wrong-password")
    assert "don't match" in await page.get_by_role("alert").inner_text()
    await page.get_by_label("App-specific password").fill(account.password)
    await page.get_by_role("button", name="Connect calendar").click()
    await page.wait_for_url("**/demo/return?**")
    await shot(page, "icloud-returned")
    connection_id = await page.locator("#param-connection_id").inner_text()
    assert connection_id.startswith("con_")
    assert await page.locator("#param-state").inner_text() == "from-chromium"


async def test_an_oauth_consent_is_completed_by_clicking(chromium, browser, sandbox):
    user_id = await browser.create_user()
    started = await browser.start(
        "google", user_id, state="g-click", return_url=f"{browser.api.url}/demo/return"
    )
    page = await chromium.new_page()
    await page.goto(started["redirect_url"])
    await shot(page, "google-consent")
    password = page.locator("input[type=password]")
    if await password.count():
        await password.fill(sandbox.accounts["google"].password)
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url("**/demo/return?**")
    await shot(page, "google-returned")
    connection_id = await page.locator("#param-connection_id").inner_text()
    async with browser.http.get(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    ) as response:
        connection = await response.json()
    assert connection["status"] == "active"
    assert connection["email"] == sandbox.accounts["google"].email
