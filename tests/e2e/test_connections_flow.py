"""The whole consent flow over HTTP, for all three providers, against the sandbox."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

PROVIDERS = ["google", "microsoft", "icloud"]


async def get_connection(browser, connection_id: str, expand: bool = False) -> tuple[int, dict]:
    suffix = "?expand[]=calendars" if expand else ""
    async with browser.http.get(
        f"{browser.api.url}/v1/connections/{connection_id}{suffix}", headers=browser.api.headers()
    ) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_linking_then_relinking_then_disconnecting(browser, sandbox, provider):
    user_id = await browser.create_user()
    returned = await browser.connect(provider, user_id)
    assert returned["state"] == [f"st-{provider}"]
    assert returned["from"] == ["test"]
    connection_id = returned["connection_id"][0]
    assert connection_id.startswith("con_")

    status, connection = await get_connection(browser, connection_id, expand=True)
    assert status == 200
    assert connection["object"] == "connection"
    assert connection["provider"] == provider
    assert connection["status"] == "active"
    assert connection["email"] == sandbox.accounts[provider].email
    assert connection["sync_mode"] == ("polling" if provider == "icloud" else connection["sync_mode"])
    assert connection["user_id"] == user_id
    refresh = connection["token_refresh"]
    assert {**refresh, "next_at": None} == {
        "last_at": None,
        "failures_count": 0,
        "next_at": None,
        "last_error": None,
    }
    # an OAuth token is refreshed ahead of its expiry from the start; an app password never is
    assert (refresh["next_at"] is None) == (provider == "icloud"), refresh
    assert connection["created_at"].endswith("Z")
    calendars = connection["calendars"]
    assert calendars, "the provider's calendars are listed"
    assert all(c["object"] == "calendar" and c["id"].startswith("cal_") for c in calendars)
    assert all(c["connection_id"] == connection_id for c in calendars)
    _, plain = await get_connection(browser, connection_id)
    assert plain["calendars"] == [c["id"] for c in calendars]

    again = await browser.connect(provider, user_id)
    assert again["connection_id"] == [connection_id], "relinking returns the same connection"
    async with browser.http.get(
        f"{browser.api.url}/v1/connections?user_id={user_id}", headers=browser.api.headers()
    ) as response:
        listed = await response.json()
    assert [c["id"] for c in listed["data"]] == [connection_id]

    async with browser.http.delete(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    ) as response:
        assert response.status == 200
        deleted = await response.json()
    assert deleted["status"] == "disconnected"
    assert deleted["disconnected_at"] is not None
    async with browser.http.delete(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    ) as response:
        assert response.status == 200
        assert (await response.json())["disconnected_at"] == deleted["disconnected_at"]
    _, after = await get_connection(browser, connection_id)
    assert after["status"] == "disconnected"

    relinked = await browser.connect(provider, user_id)
    assert relinked["connection_id"] == [connection_id]
    _, back = await get_connection(browser, connection_id)
    assert back["status"] == "active"
    assert back["disconnected_at"] is None


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_denied_consent_returns_access_denied_with_the_state(browser, provider):
    user_id = await browser.create_user()
    started = await browser.start(provider, user_id, state="keep-me")
    landed = await browser.consent(started["redirect_url"], provider, decision="deny")
    from urllib.parse import parse_qs, urlsplit

    params = parse_qs(urlsplit(landed).query)
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["keep-me"]
    assert "connection_id" not in params
    async with browser.http.get(
        f"{browser.api.url}/v1/connections?user_id={user_id}", headers=browser.api.headers()
    ) as response:
        assert (await response.json())["data"] == []
