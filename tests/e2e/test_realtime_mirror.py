"""The whole realtime path: a change in the emulator → notification → gateway → sync request →
sync worker → mirror → ``GET /v1/events``, with the polling schedule off."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from helpers import eventually
from realtime_harness import Emulator, record_sync_requests, start_gateway

pytestmark = pytest.mark.e2e
#: A day 200 days ahead: inside every provider's sync window whatever day the suite runs.
DAY = (datetime.now(UTC) + timedelta(days=200)).date()
WINDOW = f"start={DAY.isoformat()}T00:00:00Z&end={(DAY + timedelta(days=1)).isoformat()}T00:00:00Z"


@pytest.fixture
async def gateway(api):
    runner, started = await start_gateway(api)
    try:
        yield started
    finally:
        await runner.cleanup()


@pytest.fixture
async def sync_requests(api):
    async for recorder in record_sync_requests(api.settings):
        yield recorder


async def titles_in_window(browser, calendar_id: str) -> set[str]:
    url = f"{browser.api.url}/v1/events?calendar_id={calendar_id}&{WINDOW}"
    async with browser.http.get(url, headers=browser.api.headers()) as response:
        assert response.status == 200, await response.text()
        return {event["title"] for event in (await response.json())["data"]}


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_a_change_in_the_emulator_is_in_get_events_within_a_second_driven_by_the_webhook(
    browser, sandbox, http, worker, gateway, sync_requests, provider
):
    emulator = Emulator(http, sandbox.urls[provider], provider)
    user_id = await browser.create_user(f"ext-mirror-{provider}")
    connection_id = (await browser.connect(provider, user_id))["connection_id"][0]
    db = gateway.db

    async def realtime_and_synced():
        found = await db.connections.find_one({"_id": connection_id})
        return found["sync_mode"] == "realtime" and found["last_synced_at"] is not None

    await eventually(realtime_and_synced, timeout_s=60)
    calendar = await db.calendars.find_one({"connection_id": connection_id, "primary": True})
    provider_calendar, calendar_id = calendar["provider_calendar_id"], calendar["_id"]
    await eventually(lambda: _no_pending_syncs(db, connection_id), timeout_s=30)
    await sync_requests.caught_up()  # what the set-up requested is read before `first`

    title = f"webhook-{provider}-{time.monotonic_ns()}"
    first = started = time.monotonic()
    event_id = await emulator.insert_event(provider_calendar, title, DAY.isoformat())
    await eventually(lambda: _has(browser, calendar_id, title), timeout_s=10, interval_s=0.02)
    created_after = time.monotonic() - started

    renamed = title + " (moved)"
    started = time.monotonic()
    await emulator.rename_event(provider_calendar, event_id, renamed)
    await eventually(lambda: _has(browser, calendar_id, renamed), timeout_s=10, interval_s=0.02)
    changed_after = time.monotonic() - started

    # the recorder reads the topic on its own: wait for it, then for everything published so far
    await eventually(
        lambda: sync_requests.webhook(connection_id, provider_calendar, after=first), timeout_s=10
    )
    await sync_requests.caught_up()
    since = [e for at, e in sync_requests.seen if at >= first and e.connection_id == connection_id]
    assert all(e.data["reason"] == "webhook" for e in since), [e.data for e in since]
    # the one-second target is a performance target: bench/webhook_gateway.py measures it with its
    # ceiling; here (a shared, loaded machine) the behaviour is checked, within the waits above
    print(f"{provider}: created visible after {created_after:.3f}s, change after {changed_after:.3f}s")


async def _has(browser, calendar_id: str, title: str) -> bool:
    return title in await titles_in_window(browser, calendar_id)


async def _no_pending_syncs(db, connection_id: str) -> bool:
    """The initial sync is over: the worker holds no lease on the connection."""
    return await db.leases.find_one({"_id": f"sync:{connection_id}"}) is None
