"""Linking an account mirrors its calendars and events; the read API serves them."""

from __future__ import annotations

import pytest

from chronapilot.common.runtime import RUNTIME

from helpers import eventually

pytestmark = pytest.mark.e2e


async def api_get(browser, path: str) -> dict:
    async with browser.http.get(browser.api.url + path, headers=browser.api.headers()) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


async def all_events(browser, calendar_id: str, **params: str) -> list[dict]:
    events: list[dict] = []
    query = "&".join(f"{k}={v}" for k, v in params.items())
    after = ""
    while True:
        page = await api_get(
            browser, f"/v1/events?calendar_id={calendar_id}&limit=100{after}{'&' + query if query else ''}"
        )
        events += page["data"]
        if not page["has_more"]:
            return events
        after = f"&starting_after={page['data'][-1]['id']}"


@pytest.mark.parametrize("provider", ["google", "microsoft", "icloud"])
async def test_a_new_connection_is_mirrored_and_readable(browser, worker, provider):
    user_id = await browser.create_user()
    connection_id = (await browser.connect(provider, user_id))["connection_id"][0]

    async def synced():
        connection = await api_get(browser, f"/v1/connections/{connection_id}")
        return connection if connection["last_synced_at"] else None

    connection = await eventually(synced, timeout_s=60)
    assert connection["status"] == "active"
    calendars = (await api_get(browser, f"/v1/calendars?connection_id={connection_id}"))["data"]
    assert {c["id"] for c in calendars} == set(connection["calendars"])
    assert await api_get(browser, f"/v1/calendars/{calendars[0]['id']}") == calendars[0]
    total = 0
    for calendar in calendars:
        events = await all_events(browser, calendar["id"])
        total += len(events)
        for event in events:
            assert event["object"] == "event"
            assert event["calendar_id"] == calendar["id"]
            assert event["deleted"] is False
            assert event["start"] is not None or event["status"] == "cancelled"
    assert total > 0
    db = worker[RUNTIME].store.db
    assert await db.events.count_documents({"connection_id": connection_id}) >= total
    one = (await all_events(browser, calendars[0]["id"]))[0]
    assert await api_get(browser, f"/v1/events/{one['id']}") == one
