"""Sync under provider faults, calendars coming and going, and the polling schedule."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from test_sync_mirror import request_sync

from chronapilot.common.bus.catalogue import SyncKind
from chronapilot.common.metrics import DEAD_LETTERED
from chronapilot.common.runtime import RUNTIME

from api_harness import running_worker
from helpers import eventually

pytestmark = pytest.mark.e2e
EVENTS_ROUTE = "/calendar/v3/calendars/{calendarId}/events"


async def fault(sandbox, **body) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{sandbox.urls['google']}/_admin/faults", json={"route": EVENTS_ROUTE, "method": "GET", **body}
        ) as response,
    ):
        assert response.status == 201, await response.text()


async def clear_faults(sandbox) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.delete(f"{sandbox.urls['google']}/_admin/faults") as response,
    ):
        assert response.status == 204


async def test_throttling_is_waited_out_honouring_retry_after(browser, worker, sandbox):
    connection_id = await browser.link_and_sync("google")
    db = browser.api.app[RUNTIME].store.db
    before = (await db.connections.find_one({"_id": connection_id}))["last_synced_at"]
    await fault(sandbox, status=429, retry_after=1, times=2)
    started = time.monotonic()
    await request_sync(browser, connection_id, SyncKind.INCREMENTAL, None)

    async def synced_again():
        connection = await db.connections.find_one({"_id": connection_id})
        return connection if connection["last_synced_at"] > before else None

    connection = await eventually(synced_again, timeout_s=60)
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits
    assert connection["status"] == "active"


async def test_a_persistent_failure_is_sync_failed_and_a_manual_refresh_recovers(browser, worker, sandbox):
    connection_id = await browser.link_and_sync("google")
    db = browser.api.app[RUNTIME].store.db
    before = (await db.connections.find_one({"_id": connection_id}))["last_synced_at"]
    await fault(sandbox, status=503)
    try:
        await request_sync(browser, connection_id, SyncKind.INCREMENTAL, None)

        async def failed():
            connection = await db.connections.find_one({"_id": connection_id})
            return connection if connection["status"] == "error" else None

        connection = await eventually(failed, timeout_s=90)
        assert connection["error"]["code"] == "sync_failed"
        assert connection["last_synced_at"] == before  # moves only on success
        async with browser.http.get(
            f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
        ) as response:
            shown = await response.json()
        assert shown["status"] == "error"
        assert shown["error"]["code"] == "sync_failed"
    finally:
        await clear_faults(sandbox)
    async with browser.http.post(
        f"{browser.api.url}/v1/connections/{connection_id}/refresh", headers=browser.api.headers()
    ) as response:
        assert response.status == 202

    async def recovered():
        connection = await db.connections.find_one({"_id": connection_id})
        return connection if connection["status"] == "active" else None

    connection = await eventually(recovered, timeout_s=60)
    assert connection["error"] is None
    assert connection["last_synced_at"] > before


async def test_a_calendar_removed_at_the_provider_is_flagged_and_its_events_kept(browser, worker, sandbox):
    connection_id = await browser.link_and_sync("google")
    db = browser.api.app[RUNTIME].store.db
    email = sandbox.accounts["google"].email
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{sandbox.urls['google']}/_admin/users/{email}/calendars", json={"summary": "Short-lived"}
        ) as response:
            calendar_id = (await response.json())["id"]
        async with http.post(
            f"{sandbox.urls['google']}/_admin/calendars/{calendar_id}/events",
            json={
                "summary": "keep me",
                "start": {"dateTime": "2026-12-01T10:00:00Z"},
                "end": {"dateTime": "2026-12-01T11:00:00Z"},
            },
        ) as response:
            assert response.status < 300
        t0 = datetime.now(UTC)
        await request_sync(browser, connection_id, SyncKind.INCREMENTAL, None)

        async def appeared():
            return await db.calendars.find_one(
                {"connection_id": connection_id, "provider_calendar_id": calendar_id, "removed": False}
            )

        calendar = await eventually(appeared, timeout_s=60)
        await eventually(
            lambda: db.events.find_one({"calendar_id": calendar["_id"], "title": "keep me"}), timeout_s=60
        )
        async with http.delete(f"{sandbox.urls['google']}/_admin/calendars/{calendar_id}") as response:
            assert response.status < 300
    await request_sync(browser, connection_id, SyncKind.INCREMENTAL, None)

    async def removed():
        return await db.calendars.find_one({"_id": calendar["_id"], "removed": True})

    async def dropped_from_the_connection():  # written after the flag, not with it
        connection = await db.connections.find_one({"_id": connection_id})
        return calendar["_id"] not in connection["calendar_ids"]

    await eventually(removed, timeout_s=60)
    await eventually(dropped_from_the_connection, timeout_s=30)
    async with browser.http.get(
        f"{browser.api.url}/v1/events?calendar_id={calendar['_id']}", headers=browser.api.headers()
    ) as response:
        events = (await response.json())["data"]
    assert [e["title"] for e in events] == ["keep me"]
    assert t0 < datetime.now(UTC)


@pytest.fixture
async def polling_worker(api) -> AsyncIterator[web.Application]:
    async with running_worker(api, polling_enabled=True, poll_interval_s=2, poll_tick_s=0.3) as app:
        yield app


async def test_connections_in_polling_mode_are_synced_on_schedule(browser, polling_worker):
    connection_id = await browser.link_and_sync("icloud")
    db = browser.api.app[RUNTIME].store.db
    assert (await db.connections.find_one({"_id": connection_id}))["sync_mode"] == "polling"

    async def polled_twice():
        count = await db.outbox.count_documents(
            {
                "envelope.connection_id": connection_id,
                "envelope.type": "sync.completed",
                "envelope.data.reason": "poll",
            }
        )
        return count >= 2

    await eventually(polled_twice, timeout_s=60)


async def test_a_busy_sync_lease_requeues_the_request_and_nothing_is_dead_lettered(browser, api):
    """Another worker holds the connection's sync lease (here: one that died holding it): the
    request is neither a failure nor a dead letter; it goes back on the topic and is served once
    the lease is free."""
    async with running_worker(api, lease_s=1.0) as app:
        connection_id = await browser.link_and_sync("google")
        runtime = app[RUNTIME]
        db = runtime.store.db
        before = (await db.connections.find_one({"_id": connection_id}))["last_synced_at"]
        group = f"{api.settings.kafka.topic_prefix}.sync-worker"
        dead = DEAD_LETTERED.labels(group, "sync.requested")
        dead_before = dead._value.get()
        other = runtime.lease(f"sync:{connection_id}", "a-worker-that-died")
        # taken as soon as this worker's own syncs after the link (if any still run) let go of it
        assert await eventually(lambda: other.acquire(3600), timeout_s=30)

        await request_sync(browser, connection_id, SyncKind.INCREMENTAL, None)

        async def requeued() -> bool:
            sent = await db.outbox.count_documents(
                {"envelope.type": "sync.requested", "envelope.connection_id": connection_id}
            )
            return sent >= 3  # the consent's full sync, this request, and at least one requeue

        await eventually(requeued, timeout_s=30)
        await other.release()

        async def synced_again() -> bool:
            connection = await db.connections.find_one({"_id": connection_id})
            return connection["last_synced_at"] > before

        await eventually(synced_again, timeout_s=30)
        assert dead._value.get() == dead_before
        connection = await db.connections.find_one({"_id": connection_id})
        assert connection["status"] == "active"
