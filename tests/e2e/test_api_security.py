"""Tenancy, replay, open-redirect and secret-leak checks on the public API."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from chronapilot.common.clock import SystemClock
from chronapilot.common.logging import configure_logging
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.tenancy import create_application

from helpers import RETURN_PREFIX, eventually

pytestmark = pytest.mark.e2e


async def other_key(api) -> str:
    _, key = await create_application(
        api.app[RUNTIME].repos.applications,
        name="other",
        return_url_prefixes=[RETURN_PREFIX],
        live=False,
        clock=SystemClock(),
    )
    return key


async def test_another_applications_key_gets_404_on_every_connection_route(browser, api):
    user_id = await browser.create_user()
    connection_id = (await browser.connect("google", user_id))["connection_id"][0]
    stranger = {"Authorization": f"Bearer {await other_key(api)}"}
    http, url = browser.http, api.url
    for method, path in [
        ("GET", f"/v1/connections/{connection_id}"),
        ("GET", f"/v1/connections/{connection_id}?expand[]=calendars"),
        ("DELETE", f"/v1/connections/{connection_id}"),
        ("POST", f"/v1/connections/{connection_id}/refresh"),
        ("GET", f"/v1/users/{user_id}"),
    ]:
        async with http.request(method, url + path, headers=stranger) as response:
            assert response.status == 404, (method, path)
            assert (await response.json())["error"]["code"] == "resource_missing"
    async with http.get(f"{url}/v1/connections", headers=stranger) as response:
        assert (await response.json())["data"] == []
    async with http.post(
        f"{url}/v1/connections/start",
        headers=stranger,
        json={"provider": "google", "user_id": user_id, "return_url": RETURN_PREFIX},
    ) as response:
        assert response.status == 404
        assert (await response.json())["error"]["param"] == "user_id"
    async with http.get(f"{url}/v1/connections/{connection_id}", headers=api.headers()) as response:
        assert (await response.json())["status"] == "active"  # the stranger's DELETE did nothing


async def test_a_replayed_or_forged_callback_gets_an_error_page_and_no_connection(browser, api, sandbox):
    user_id = await browser.create_user()
    started = await browser.start("google", user_id)
    account = sandbox.accounts["google"]
    from urllib.parse import urljoin

    from chronapilot.sandbox.shared.consent import read_consent_form

    async with browser.http.get(started["redirect_url"]) as page:
        form = read_consent_form(await page.text())
        page_url = str(page.url)
    async with browser.http.post(
        urljoin(page_url, form.action),
        data=form.submission("allow", email=account.email, password=account.password),
        allow_redirects=False,
    ) as response:
        callback = response.headers["Location"]
    async with browser.http.get(callback, allow_redirects=False) as first:
        assert first.status == 302
    async with browser.http.get(callback, allow_redirects=False) as replay:
        assert replay.status == 400
        assert "text/html" in replay.headers["Content-Type"]
        assert "This sign-in link" in await replay.text()
    forged = callback.split("state=")[0] + "state=forged&code=whatever"
    async with browser.http.get(forged, allow_redirects=False) as response:
        assert response.status == 400
    async with browser.http.get(
        f"{api.url}/v1/connections?user_id={user_id}", headers=api.headers()
    ) as response:
        assert len((await response.json())["data"]) == 1


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example/return/",
        "http://localhost:4000/other/",
        "http://localhost:4000/returnx/",
        "http://localhost:4001/return/",
        "http://evil.example/return/",
        "javascript:alert(1)",
        "//evil.example/return/",
        "https://user:pw@localhost:4000/return/",
        "return/",
        "http://localhost:4000/return/../../other",
        "http://localhost:4000/return/%2e%2e/other",
        "http://localhost:4000/return/%2E%2E/%2e%2e/other",
    ],
)
async def test_a_return_url_outside_the_allowed_prefixes_is_refused(browser, api, return_url):
    user_id = await browser.create_user()
    async with browser.http.post(
        f"{api.url}/v1/connections/start",
        headers=api.headers(),
        json={"provider": "google", "user_id": user_id, "return_url": return_url},
    ) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["param"] == "return_url"


async def test_no_token_password_or_key_appears_in_responses_or_logs(browser, api, sandbox, capfd):
    configure_logging("DEBUG", "json", service="api-test")
    user_id = await browser.create_user()
    bodies = []
    for provider in ("google", "microsoft", "icloud"):
        returned = await browser.connect(provider, user_id)
        connection_id = returned["connection_id"][0]
        for suffix in ("", "?expand[]=calendars"):
            async with browser.http.get(
                f"{api.url}/v1/connections/{connection_id}{suffix}", headers=api.headers()
            ) as response:
                bodies.append(await response.text())
    # a wrong iCloud password is typed, too
    started = await browser.start("icloud", user_id)
    page = await browser.consent(started["redirect_url"], "icloud", password="wrong-pass-word-0000")
    assert page.startswith("page:401")
    bodies.append(page)
    # access-log lines are written after their response went out: wait until a request made
    # after all the others is logged, so every line of theirs is in the captured output
    marker = f"/v1/users/marker-{uuid.uuid4().hex}"
    async with browser.http.get(api.url + marker, headers=api.headers()) as response:
        await response.read()  # an error answer: only its access-log line matters
    out = err = ""

    def logged_up_to_the_marker() -> bool:
        nonlocal out, err
        more_out, more_err = capfd.readouterr()
        out, err = out + more_out, err + more_err
        return marker in out + err

    await eventually(logged_up_to_the_marker, timeout_s=10)
    secrets = {api.key}
    secrets |= {account.password for account in sandbox.accounts.values()}
    runtime = api.app[RUNTIME]
    async for credential in runtime.store.db.credentials.find():
        for field in ("access_token", "refresh_token", "password"):
            if credential.get(field):
                plain = runtime.cipher.decrypt(credential[field], associated_data=credential["_id"])
                if plain:
                    secrets.add(plain)
                    assert plain not in json.dumps(credential, default=str)  # sealed at rest
    assert len(secrets) >= 6
    logged_up_to_the_marker()  # and whatever came since
    for secret in secrets:
        for text in [out, err, *bodies]:
            assert secret not in text
    assert "consent.completed" in out


async def test_the_state_in_the_answer_is_what_comes_back(browser):
    user_id = await browser.create_user()
    started = await browser.start("microsoft", user_id)  # no state given: one is generated
    assert len(started["state"]) >= 16
    landed = await browser.consent(started["redirect_url"], "microsoft")
    assert parse_qs(urlsplit(landed).query)["state"] == [started["state"]]
    assert started["expires_at"].endswith("Z")
