"""kill -9 of a sync worker in the middle of a full sync: another worker process finishes it
and the mirror equals the provider."""

from __future__ import annotations

import signal
import sys
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from test_sync_mirror import assert_mirror_equals_provider, make_driver, request_sync, wait_synced

from chronapilot.common.bus.catalogue import SyncKind
from chronapilot.common.runtime import RUNTIME
from chronapilot.devstack.processes import Child, free_port

from helpers import eventually

pytestmark = pytest.mark.e2e
EVENTS_ROUTE = "/calendar/v3/calendars/{calendarId}/events"


def start_worker(isolated, sandbox, tmp_path, name: str) -> Child:
    provider_env = {k: v for k, v in sandbox.env().items() if not k.startswith("CHRONAPILOT_DEMO_")}
    env = isolated.env(
        **provider_env,
        CHRONAPILOT_SYNC_WORKER_PORT=str(free_port()),
        CHRONAPILOT_SYNC_POLLING_ENABLED="false",
        CHRONAPILOT_SYNC_LEASE_S="6",
        CHRONAPILOT_LOG_LEVEL="INFO",
    )
    return Child.start(
        name, [sys.executable, "-m", "chronapilot.sync_worker"], env=env, log_path=tmp_path / f"{name}.log"
    )


@pytest.mark.timeout(600)
async def test_a_worker_killed_mid_full_sync_is_replaced_and_the_mirror_converges(
    browser, sandbox, isolated, tmp_path
):
    first = start_worker(isolated, sandbox, tmp_path, "worker-1")
    second = None
    google = sandbox.urls["google"]
    try:
        connection_id = await browser.link_and_sync("google", timeout_s=90)
        db = browser.api.app[RUNTIME].store.db
        async with aiohttp.ClientSession() as http:
            driver_a, connection = await make_driver(browser, sandbox, "google", connection_id, http)
            driver_b, _ = await make_driver(browser, sandbox, "google", connection_id, http)
            big, small = await driver_a.new_calendar(), await driver_b.new_calendar()
            start = datetime(2026, 12, 1, 9, tzinfo=UTC)
            for n in range(1200):
                await driver_a.create(f"a {n}", start + timedelta(hours=n))
            for n in range(600):
                await driver_b.create(f"b {n}", start + timedelta(hours=n))
            async with http.post(
                f"{google}/_admin/faults", json={"route": EVENTS_ROUTE, "method": "GET", "latency_ms": 1500}
            ) as response:
                assert response.status == 201
            t0 = datetime.now(UTC)
            await request_sync(browser, connection_id, SyncKind.FULL, None)

            async def mirroring_started():
                return await db.events.count_documents(
                    {"connection_id": connection_id, "title": {"$regex": "^[ab] "}}
                )

            await eventually(mirroring_started, timeout_s=120, interval_s=0.05)
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(10)
            states = [
                s
                async for s in db.sync_state.find(
                    {"connection_id": connection_id, "last_full_sync_at": {"$gte": t0}}
                )
            ]
            assert len(states) < 5, "the kill came before all five calendars (3 demo, 2 new) finished"
            async with http.delete(f"{google}/_admin/faults") as response:
                assert response.status == 204

            second = start_worker(isolated, sandbox, tmp_path, "worker-2")
            for calendar_id, driver in ((big, driver_a), (small, driver_b)):
                calendar = await wait_synced(db, connection_id, calendar_id, t0, full=True)
                count = await assert_mirror_equals_provider(db, connection, driver, connection_id, calendar)
                assert count == (1200 if driver is driver_a else 600)
            connection_doc = await db.connections.find_one({"_id": connection_id})
            assert connection_doc["status"] == "active"
    finally:
        for child in (first, second):
            if child is not None:
                child.stop(10)
